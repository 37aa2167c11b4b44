/*
** vecstore: entry point. Checks the CPU, then registers the vector functions and the vecstore module.
*/
#include "vecstore_int.h"

#include <stdarg.h>

SQLITE_EXTENSION_INIT1

int vs_vtab_register(sqlite3 *db);

void vs_error(char **pzErr, const char *zFmt, ...) {
  if (pzErr == 0) return;
  va_list ap;
  va_start(ap, zFmt);
  char *zMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(*pzErr);
  *pzErr = zMsg ? sqlite3_mprintf("vecstore: %s", zMsg) : 0;
  sqlite3_free(zMsg);
}

static void version_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, VECSTORE_VERSION, -1, SQLITE_STATIC);
}

/* The Faiss build uses AVX2, FMA and F16C: a CPU without them would die of SIGILL in the first search.
** VECSTORE_TEST_NO_AVX2=1 simulates such a CPU so the refusal itself can be tested. */
static int cpu_is_supported(void) {
  const char *zFake = getenv("VECSTORE_TEST_NO_AVX2");
  if (zFake && zFake[0] == '1') return 0;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
}

#ifdef _WIN32
__declspec(dllexport)
#endif
__attribute__((visibility("default"))) int sqlite3_vecstore_init(sqlite3 *db, char **pzErrMsg,
                                                                  const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  if (!cpu_is_supported()) {
    if (pzErrMsg) {
      *pzErrMsg = sqlite3_mprintf("vecstore: this CPU lacks AVX2/FMA, which this build of vecstore and Faiss "
                                  "requires (expected an x86-64 CPU with AVX2, received one without)");
    }
    return SQLITE_ERROR;
  }
  int rc = sqlite3_create_function(db, "vecstore_version", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                   0, version_func, 0, 0);
  if (rc == SQLITE_OK) rc = vs_vector_register(db);
  if (rc == SQLITE_OK) rc = vs_embed_register(db);
  if (rc == SQLITE_OK) rc = vs_split_register(db);
  if (rc == SQLITE_OK) rc = vs_filter_register(db);
  if (rc == SQLITE_OK) rc = vs_vtab_register(db);
  if (rc != SQLITE_OK && pzErrMsg && *pzErrMsg == 0) {
    *pzErrMsg = sqlite3_mprintf("vecstore: registration failed: %s", sqlite3_errstr(rc));
  }
  return rc;
}
