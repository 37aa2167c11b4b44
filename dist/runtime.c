/*
** The two runtime pieces of the self-contained build (make dist) that Debian's static archives cannot provide in a
** shared object.
**
** OpenMP. Debian's libgomp.a is compiled as position-dependent (PIE) code: its thread-local variables use the
** local-exec TLS model (R_X86_64_TPOFF32), which the linker refuses in a shared object, and Debian ships no static
** LLVM libomp. This file implements the part of the GOMP ABI that Faiss and the shim call, serially: every parallel
** region runs on the calling thread as a team of one, which is a conforming OpenMP implementation (a region may
** always get fewer threads than asked for). Critical and atomic sections, and the lock routines, still exclude
** other threads, since several SQLite connections may call Faiss from several threads at once.
** vecstore already searches with one thread; in this build adding and training use one core too.
**
** Fortran runtime. The LAPACK routines inside OpenBLAS call one libgfortran function, _gfortran_concat_string
** (CHARACTER concatenation). libgfortran.a, like libgomp.a, uses local-exec TLS (its async I/O unit), and the one
** object that defines this function drags in its error and I/O machinery, so the function is implemented here
** (its semantics: copy s1 then s2 into dest, truncated to destlen, padded with blanks).
**
** A symbol that Faiss needs and this file lacks fails the link (-Wl,--no-undefined), it cannot slip through.
*/
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#define VS_RT __attribute__((visibility("hidden")))

_Static_assert(sizeof(omp_lock_t) >= sizeof(int) && _Alignof(omp_lock_t) >= _Alignof(int),
               "omp_lock_t holds an int");

static pthread_mutex_t critical_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t atomic_mutex = PTHREAD_MUTEX_INITIALIZER;
static int nested_flag;

/* ---- compiler entry points (GOMP ABI of GCC 12) ---- */

VS_RT void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
  (void)num_threads;
  (void)flags;
  fn(data);
}

VS_RT void GOMP_barrier(void) {}

VS_RT bool GOMP_single_start(void) { return true; }

VS_RT void GOMP_critical_start(void) { pthread_mutex_lock(&critical_mutex); }
VS_RT void GOMP_critical_end(void) { pthread_mutex_unlock(&critical_mutex); }
VS_RT void GOMP_atomic_start(void) { pthread_mutex_lock(&atomic_mutex); }
VS_RT void GOMP_atomic_end(void) { pthread_mutex_unlock(&atomic_mutex); }

/* A worksharing loop with a dynamic schedule: the only thread of the team takes the whole range at once. */
VS_RT bool GOMP_loop_nonmonotonic_dynamic_start(long start, long end, long incr, long chunk, long *istart,
                                                long *iend) {
  (void)chunk;
  if (incr > 0 ? start >= end : start <= end) return false;
  *istart = start;
  *iend = end;
  return true;
}

VS_RT bool GOMP_loop_nonmonotonic_dynamic_next(long *istart, long *iend) {
  (void)istart;
  (void)iend;
  return false;
}

VS_RT void GOMP_loop_end(void) {}
VS_RT void GOMP_loop_end_nowait(void) {}

/* ---- user-level routines ---- */

VS_RT int omp_get_num_threads(void) { return 1; }
VS_RT int omp_get_thread_num(void) { return 0; }
VS_RT int omp_get_max_threads(void) { return 1; }
VS_RT void omp_set_num_threads(int n) { (void)n; }
VS_RT int omp_in_parallel(void) { return 0; } /* a team of one is an inactive region */
VS_RT int omp_get_nested(void) { return __atomic_load_n(&nested_flag, __ATOMIC_RELAXED); }
VS_RT void omp_set_nested(int b) { __atomic_store_n(&nested_flag, b != 0, __ATOMIC_RELAXED); }

VS_RT int omp_get_num_procs(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

VS_RT void omp_init_lock(omp_lock_t *lock) { __atomic_store_n((int *)lock, 0, __ATOMIC_RELEASE); }
VS_RT void omp_destroy_lock(omp_lock_t *lock) { (void)lock; }
VS_RT void omp_unset_lock(omp_lock_t *lock) { __atomic_store_n((int *)lock, 0, __ATOMIC_RELEASE); }
VS_RT void omp_set_lock(omp_lock_t *lock) {
  int expected = 0;
  while (!__atomic_compare_exchange_n((int *)lock, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    expected = 0;
    sched_yield();
  }
}

/* ---- libgfortran ---- */

VS_RT void _gfortran_concat_string(size_t destlen, char *dest, size_t len1, const char *s1, size_t len2,
                                   const char *s2) {
  if (len1 >= destlen) {
    memcpy(dest, s1, destlen);
    return;
  }
  memcpy(dest, s1, len1);
  dest += len1;
  destlen -= len1;
  if (len2 >= destlen) {
    memcpy(dest, s2, destlen);
    return;
  }
  memcpy(dest, s2, len2);
  memset(dest + len2, ' ', destlen - len2);
}
