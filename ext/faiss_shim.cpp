/*
** faiss_shim.cpp: the few things Faiss 1.7.3's C API lacks, as extern "C" functions in its naming style:
** search with an IDSelector and per-query SearchParameters (efSearch, nprobe, max_codes) that leave the
** index untouched, the default parameters through ParameterSpace, the training minimum of an index, the
** structure check of a read index, and the Faiss part of a snapshot (its largest arrays written and read by
** vecstore itself, see vs_faiss_snapshot_write). Every Faiss exception is caught here and turned into a
** "vecstore: " message.
*/
#include <faiss/AutoTune.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include <sqlite3ext.h>
extern const sqlite3_api_routines *sqlite3_api;
}

typedef long long vs_i64;
struct FaissIndex_H;

extern "C" {
/* Mirrors VsFaissSearch of vecstore_int.h (which is C-only). */
struct VsFaissSearch {
  const float *aQuery;
  vs_i64 k;
  const char *zParams;
  int (*xKeep)(void *pCtx, vs_i64 iLabel);
  void *pKeepCtx;
  float *aDist;
  vs_i64 *aLabel;
};
int vs_faiss_search(FaissIndex_H *pIndex, VsFaissSearch *pReq, char **pzErr);
int vs_faiss_check_params(FaissIndex_H *pIndex, const char *zParams, char **pzErr);
int vs_faiss_apply_params(FaissIndex_H *pIndex, const char *zParams, char **pzErr);
void vs_faiss_threads(int nThread);
vs_i64 vs_faiss_train_minimum(FaissIndex_H *pIndex);
int vs_faiss_ivf_probe(FaissIndex_H *pIndex, const char *zParams, vs_i64 *pnProbe, vs_i64 *pnList);
void vs_faiss_reserve(FaissIndex_H *pIndex, vs_i64 nMore);
int vs_faiss_flat_distances(FaissIndex_H *pIndex, const float *aQuery, const vs_i64 *aLabel, vs_i64 n, float *aDist);
int vs_faiss_check_structure(FaissIndex_H *pIndex, char **pzErr);
int vs_faiss_enable_lookup(FaissIndex_H *pIndex);
int vs_faiss_is_graph_over_flat(FaissIndex_H *pIndex);
int vs_faiss_snapshot_write(FaissIndex_H *pIndex, FILE *f, char **pzErr);
/* Mirrors VsSnapIn of vecstore_int.h. */
struct VsSnapIn {
  size_t (*xRead)(void *pCtx, void *aOut, size_t n);
  int (*xSeal)(void *pCtx, char **pzErr);
  void *pCtx;
};
int vs_faiss_snapshot_read(const VsSnapIn *pIn, vs_i64 nAvail, vs_i64 nLabel, FaissIndex_H **ppIndex, char **pzErr);
int vs_faiss_read_index(const VsSnapIn *pIn, FaissIndex_H **ppIndex, char **pzErr);
}

namespace {

void set_error(char **pzErr, const std::string &msg) {
  if (pzErr == nullptr) return;
  sqlite3_free(*pzErr);
  *pzErr = sqlite3_mprintf("vecstore: %s", msg.c_str());
}

/* Faiss messages read "Error in <function> at <file>:<line>: <what>"; keep <what>. */
std::string faiss_message(const faiss::FaissException &e) {
  std::string m = e.msg;
  size_t at = m.find(" at ");
  if (at != std::string::npos) {
    size_t colon = m.find(": ", at);
    if (colon != std::string::npos) m = m.substr(colon + 2);
  }
  return m;
}

/* Inside a catch block: the exception being handled as an SQLite result, SQLITE_NOMEM for an allocation failure,
** else SQLITE_ERROR with *pzErr "<zWhat>: <message>" (Faiss's message without its source location). */
int caught(const char *zWhat, char **pzErr) {
  try {
    throw;
  } catch (const faiss::FaissException &e) {
    set_error(pzErr, std::string(zWhat) + ": " + faiss_message(e));
  } catch (const std::bad_alloc &) {
    return SQLITE_NOMEM;
  } catch (const std::exception &e) {
    set_error(pzErr, std::string(zWhat) + ": " + e.what());
  } catch (...) {
    set_error(pzErr, zWhat);
  }
  return SQLITE_ERROR;
}

struct CallbackSelector : faiss::IDSelector {
  int (*xKeep)(void *, vs_i64);
  void *pCtx;
  CallbackSelector(int (*x)(void *, vs_i64), void *p) : xKeep(x), pCtx(p) {}
  bool is_member(idx_t id) const override { return xKeep(pCtx, (vs_i64)id) != 0; }
};

struct Param {
  std::string name;
  double value;
  bool used;
};

/* Values size Faiss's allocations and are cast to integers: the integer parameters must be integers in range
** (efSearch and nprobe are further clamped to the index's size at search time), any other at most 2^53. */
bool check_value(const std::string &name, double v, std::string &err) {
  static const struct {
    const char *name;
    double lo, hi;
  } ints[] = {{"efSearch", 1, 2147483647.0}, {"nprobe", 1, 2147483647.0}, {"quantizer_efSearch", 1, 2147483647.0},
              {"max_codes", 0, 9007199254740992.0}, {"ht", 0, 2147483647.0}};
  char buf[64];
  snprintf(buf, sizeof(buf), "%.17g", v);
  for (const auto &r : ints) {
    if (name == r.name && !(v >= r.lo && v <= r.hi && v == (double)(long long)v)) {
      char range[96];
      snprintf(range, sizeof(range), "%.0f to %.0f", r.lo, r.hi);
      err = "search parameter " + name + " must be an integer from " + range + ", received " + buf;
      return false;
    }
  }
  if (!(v <= 9007199254740992.0)) {
    err = "search parameter " + name + " must be at most 2^53, received " + buf;
    return false;
  }
  return true;
}

/* Parses "name=value,name=value". */
bool parse_params(const char *z, std::vector<Param> &out, std::string &err) {
  if (z == nullptr) return true;
  std::string s(z);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(pos, comma - pos);
    pos = comma + 1;
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    size_t eq = item.find('=');
    char *end = nullptr;
    double v = eq == std::string::npos ? 0 : strtod(item.c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == item.c_str() + eq + 1 || *end != 0 || v < 0) {
      err = "search parameters must look like 'efSearch=64,nprobe=8', received '" + s + "'";
      return false;
    }
    std::string name = item.substr(0, eq);
    if (!check_value(name, v, err)) return false;
    out.push_back(Param{name, v, false});
  }
  return true;
}

double take(std::vector<Param> &params, const char *name, double dflt) {
  double v = dflt;
  for (auto &p : params) {
    if (p.name == name) {
      v = p.value;
      p.used = true;
    }
  }
  return v;
}

/* Faiss 1.7.3's HNSW sizes its candidate queue from the index's own efSearch even when SearchParametersHNSW
** carries another (HNSW::search: ef = max(efSearch, k)), so a larger per-query efSearch would be capped. The
** index belongs to one connection and is searched by one thread at a time, so the field is set for the call
** and put back by this guard. */
struct EfSearchGuard {
  faiss::IndexHNSW *hnsw = nullptr;
  int saved = 0;
  void set(const faiss::IndexHNSW *index, int ef) {
    hnsw = const_cast<faiss::IndexHNSW *>(index);
    saved = hnsw->hnsw.efSearch;
    hnsw->hnsw.efSearch = ef;
  }
  ~EfSearchGuard() {
    if (hnsw) hnsw->hnsw.efSearch = saved;
  }
};

/* Builds the SearchParameters for index (owned by holder), consuming the parameter names it knows. Returns
** nullptr for index types whose search takes no parameters at all; *known lists the names accepted. */
faiss::SearchParameters *build_params(const faiss::Index *index, std::vector<Param> &params,
                                      faiss::IDSelector *sel,
                                      std::vector<std::unique_ptr<faiss::SearchParameters>> &holder,
                                      std::string &known, EfSearchGuard *guard, vs_i64 k) {
  if (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) {
    faiss::SearchParameters *inner = build_params(pt->index, params, sel, holder, known, guard, k);
    if (inner == nullptr) return nullptr;
    auto p = std::make_unique<faiss::SearchParametersPreTransform>();
    p->index_params = inner;
    holder.push_back(std::move(p));
    return holder.back().get();
  }
  if (auto hnsw = dynamic_cast<const faiss::IndexHNSW *>(index)) {
    auto p = std::make_unique<faiss::SearchParametersHNSW>();
    vs_i64 ef = (vs_i64)take(params, "efSearch", hnsw->hnsw.efSearch);
    /* HNSW stops once efSearch candidates lie below the current one, whatever k is: a batch deeper than
    ** efSearch (the streaming cursor's later batches) searches with ef = k so its tail is as good as its head.
    ** A queue longer than the index holds nothing more, and would be allocated whole: ef is clamped to it. */
    if (k > ef) ef = k;
    ef = std::min<vs_i64>(ef, std::min<vs_i64>(std::max<vs_i64>((vs_i64)hnsw->ntotal, 1), 1 << 20));
    p->efSearch = (int)std::max<vs_i64>(ef, 1);
    p->sel = sel;
    if (guard && p->efSearch != hnsw->hnsw.efSearch) guard->set(hnsw, p->efSearch);
    known = "efSearch";
    holder.push_back(std::move(p));
    return holder.back().get();
  }
  if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(index)) {
    auto p = std::make_unique<faiss::SearchParametersIVF>();
    p->nprobe = (size_t)take(params, "nprobe", (double)ivf->nprobe);
    p->max_codes = (size_t)take(params, "max_codes", (double)ivf->max_codes);
    p->sel = sel;
    known = "nprobe, max_codes";
    holder.push_back(std::move(p));
    return holder.back().get();
  }
  if (dynamic_cast<const faiss::IndexFlatCodes *>(index) != nullptr &&
      dynamic_cast<const faiss::IndexPQ *>(index) == nullptr) {
    auto p = std::make_unique<faiss::SearchParameters>();
    p->sel = sel;
    known = "none";
    holder.push_back(std::move(p));
    return holder.back().get();
  }
  known = "none";
  return nullptr;
}

bool check_all_used(const std::vector<Param> &params, const std::string &known, std::string &err) {
  for (const auto &p : params) {
    if (!p.used) {
      err = "unknown search parameter '" + p.name + "' for this index (expected: " + known + ")";
      return false;
    }
  }
  return true;
}

}  // namespace

int vs_faiss_search(FaissIndex_H *pIndex, VsFaissSearch *pReq, char **pzErr) {
  const faiss::Index *index = reinterpret_cast<const faiss::Index *>(pIndex);
  try {
    std::vector<Param> params;
    std::string err, known;
    if (!parse_params(pReq->zParams, params, err)) {
      set_error(pzErr, err);
      return SQLITE_ERROR;
    }
    std::unique_ptr<CallbackSelector> sel;
    if (pReq->xKeep) sel = std::make_unique<CallbackSelector>(pReq->xKeep, pReq->pKeepCtx);
    std::vector<std::unique_ptr<faiss::SearchParameters>> holder;
    EfSearchGuard guard;
    faiss::SearchParameters *sp = build_params(index, params, sel.get(), holder, known, &guard, pReq->k);
    if (!check_all_used(params, known, err)) {
      set_error(pzErr, err);
      return SQLITE_ERROR;
    }
    /* The caller re-checks every label, so an index that cannot take a selector just returns more. Some index
    ** types (LSH, additive quantizers, IVF fast-scan) refuse SearchParameters altogether, though they take
    ** no per-query parameter vecstore would pass: they are searched without. */
    auto labels = reinterpret_cast<faiss::Index::idx_t *>(pReq->aLabel);
    try {
      index->search(1, pReq->aQuery, (faiss::Index::idx_t)pReq->k, pReq->aDist, labels, sp);
    } catch (const faiss::FaissException &e) {
      if (sp == nullptr || e.msg.find("params not supported") == std::string::npos) throw;
      /* IVF fast-scan: this query's nprobe and max_codes go into the index's own fields for the call. */
      auto ivf = dynamic_cast<faiss::IndexIVF *>(const_cast<faiss::Index *>(index));
      auto ivfp = dynamic_cast<const faiss::SearchParametersIVF *>(sp);
      if ((ivf == nullptr) != (ivfp == nullptr)) throw;
      size_t nprobe = ivf ? ivf->nprobe : 0, max_codes = ivf ? ivf->max_codes : 0;
      if (ivf) ivf->nprobe = ivfp->nprobe, ivf->max_codes = ivfp->max_codes;
      try {
        index->search(1, pReq->aQuery, (faiss::Index::idx_t)pReq->k, pReq->aDist, labels, nullptr);
      } catch (...) {
        if (ivf) ivf->nprobe = nprobe, ivf->max_codes = max_codes;
        throw;
      }
      if (ivf) ivf->nprobe = nprobe, ivf->max_codes = max_codes;
    }
    return SQLITE_OK;
  } catch (...) {
    return caught("Faiss search failed", pzErr);
  }
}

int vs_faiss_check_params(FaissIndex_H *pIndex, const char *zParams, char **pzErr) {
  const faiss::Index *index = reinterpret_cast<const faiss::Index *>(pIndex);
  try {
    std::vector<Param> params;
    std::string err, known;
    std::vector<std::unique_ptr<faiss::SearchParameters>> holder;
    if (!parse_params(zParams, params, err) ||
        (build_params(index, params, nullptr, holder, known, nullptr, 0), !check_all_used(params, known, err))) {
      set_error(pzErr, err);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  } catch (const std::exception &e) {
    set_error(pzErr, e.what());
  }
  return SQLITE_ERROR;
}

/* Puts the search-time fields vecstore knows back to Faiss's defaults (efSearch 16, nprobe 1, max_codes 0). */
static void reset_search_fields(faiss::Index *index) {
  if (auto pt = dynamic_cast<faiss::IndexPreTransform *>(index)) {
    reset_search_fields(pt->index);
  } else if (auto hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) {
    hnsw->hnsw.efSearch = 16;
  } else if (auto ivf = dynamic_cast<faiss::IndexIVF *>(index)) {
    ivf->nprobe = 1;
    ivf->max_codes = 0;
    if (auto qh = dynamic_cast<faiss::IndexHNSW *>(ivf->quantizer)) qh->hnsw.efSearch = 16;
  }
}

int vs_faiss_apply_params(FaissIndex_H *pIndex, const char *zParams, char **pzErr) {
  faiss::Index *index = reinterpret_cast<faiss::Index *>(pIndex);
  reset_search_fields(index);
  if (zParams == nullptr || zParams[0] == 0) return SQLITE_OK;
  try {
    std::vector<Param> params;
    std::string err;
    if (!parse_params(zParams, params, err)) {
      set_error(pzErr, err);
      return SQLITE_ERROR;
    }
    faiss::ParameterSpace ps;
    for (const auto &p : params) ps.set_index_parameter(index, p.name, p.value);
    return SQLITE_OK;
  } catch (const faiss::FaissException &e) {
    set_error(pzErr, "invalid search_params '" + std::string(zParams) + "': " + faiss_message(e));
  } catch (const std::exception &e) {
    set_error(pzErr, "invalid search_params '" + std::string(zParams) + "': " + e.what());
  }
  return SQLITE_ERROR;
}

void vs_faiss_threads(int nThread) { omp_set_num_threads(nThread > 0 ? nThread : omp_get_num_procs()); }

vs_i64 vs_faiss_train_minimum(FaissIndex_H *pIndex) {
  const faiss::Index *index = reinterpret_cast<const faiss::Index *>(pIndex);
  if (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) {
    return vs_faiss_train_minimum(reinterpret_cast<FaissIndex_H *>(pt->index));
  }
  vs_i64 n = 1;
  if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(index)) n = (vs_i64)ivf->nlist;
  if (auto ivfpq = dynamic_cast<const faiss::IndexIVFPQ *>(index)) {
    if ((vs_i64)ivfpq->pq.ksub > n) n = (vs_i64)ivfpq->pq.ksub;
  }
  if (auto pq = dynamic_cast<const faiss::IndexPQ *>(index)) n = (vs_i64)pq->pq.ksub;
  return n;
}

int vs_faiss_ivf_probe(FaissIndex_H *pIndex, const char *zParams, vs_i64 *pnProbe, vs_i64 *pnList) {
  const faiss::Index *index = reinterpret_cast<const faiss::Index *>(pIndex);
  while (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) index = pt->index;
  auto ivf = dynamic_cast<const faiss::IndexIVF *>(index);
  if (ivf == nullptr) return 0;
  std::vector<Param> params;
  std::string err;
  *pnProbe = (vs_i64)ivf->nprobe;
  if (parse_params(zParams, params, err)) *pnProbe = (vs_i64)take(params, "nprobe", (double)ivf->nprobe);
  *pnList = (vs_i64)ivf->nlist;
  if (*pnProbe > *pnList) *pnProbe = *pnList;
  return 1;
}

/* Asks the kernel to back a large array with transparent huge pages (Linux's "madvise" THP mode, Debian's
** default). Every array an open fills or a bulk insert grows is touched page by page for the first time; with
** 4 KiB pages that first touch costs more than copying the bytes (measured on a 2-core VM: 512 MB touched in
** 1.94 s with 4 KiB pages, 0.09 s with 2 MiB pages). Only the whole 2 MiB pages inside the array are advised;
** small arrays are left alone. Advice only: nothing changes where the kernel refuses it. */
template <class T>
static void advise_huge_pages(const std::vector<T> &v) {
  const uintptr_t kHuge = (uintptr_t)2 << 20;
  size_t nByte = v.capacity() * sizeof(T);
  if (nByte < 2 * kHuge) return;
  uintptr_t iStart = ((uintptr_t)v.data() + kHuge - 1) & ~(kHuge - 1);
  uintptr_t iEnd = ((uintptr_t)v.data() + nByte) & ~(kHuge - 1);
  if (iEnd > iStart) madvise((void *)iStart, iEnd - iStart, MADV_HUGEPAGE);
}

/* Grows a vector's capacity to hold nMore more elements (best effort: out of memory leaves it as it was). */
template <class T>
static void reserve_more(std::vector<T> &v, size_t nMore) {
  try {
    if (v.capacity() < v.size() + nMore) {
      v.reserve(v.size() + nMore);
      advise_huge_pages(v);
    }
  } catch (const std::exception &) {
  }
}

void vs_faiss_reserve(FaissIndex_H *pIndex, vs_i64 nMore) {
  faiss::Index *index = reinterpret_cast<faiss::Index *>(pIndex);
  if (nMore <= 0) return;
  if (auto pt = dynamic_cast<faiss::IndexPreTransform *>(index)) index = pt->index;
  if (auto hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) {
    size_t nPer = hnsw->ntotal > 0 ? hnsw->hnsw.neighbors.size() / (size_t)hnsw->ntotal : 0;
    reserve_more(hnsw->hnsw.levels, (size_t)nMore);
    reserve_more(hnsw->hnsw.offsets, (size_t)nMore);
    reserve_more(hnsw->hnsw.neighbors, nPer * (size_t)nMore);
    index = hnsw->storage;
  }
  if (auto flat = dynamic_cast<faiss::IndexFlatCodes *>(index)) reserve_more(flat->codes, flat->code_size * (size_t)nMore);
}

/* Raw Faiss distances from one query to the vectors of the given labels, read from the index's own
** full-precision vectors (Flat, HNSW over Flat, or IVF-Flat with its label lookup, vs_faiss_enable_lookup) with
** Faiss's SIMD kernels: 1, or 0 (nothing written) when the index keeps no such vectors (quantized, transformed).
** Labels must be below ntotal. With n = 0 it just tells whether it could. */
int vs_faiss_flat_distances(FaissIndex_H *pIndex, const float *aQuery, const vs_i64 *aLabel, vs_i64 n, float *aDist) {
  faiss::Index *index = reinterpret_cast<faiss::Index *>(pIndex);
  if (auto ivf = dynamic_cast<faiss::IndexIVFFlat *>(index)) {
    auto lists = dynamic_cast<const faiss::ArrayInvertedLists *>(ivf->invlists);
    const bool l2 = ivf->metric_type == faiss::METRIC_L2;
    if (lists == nullptr || ivf->direct_map.type != faiss::DirectMap::Array ||
        (!l2 && ivf->metric_type != faiss::METRIC_INNER_PRODUCT)) {
      return 0;
    }
    const size_t d = (size_t)ivf->d;
    for (vs_i64 i = 0; i < n; i++) {
      faiss::Index::idx_t lo = ivf->direct_map.array[(size_t)aLabel[i]];
      const float *y = reinterpret_cast<const float *>(lists->codes[faiss::lo_listno(lo)].data()) +
                       (size_t)faiss::lo_offset(lo) * d;
      aDist[i] = l2 ? faiss::fvec_L2sqr(aQuery, y, d) : faiss::fvec_inner_product(aQuery, y, d);
    }
    return 1;
  }
  if (auto hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) index = hnsw->storage;
  auto flat = dynamic_cast<faiss::IndexFlat *>(index);
  if (flat == nullptr) return 0;
  const float *xb = flat->get_xb();
  const size_t d = (size_t)flat->d;
  const bool l2 = flat->metric_type == faiss::METRIC_L2;
  if (!l2 && flat->metric_type != faiss::METRIC_INNER_PRODUCT) return 0;
  /* Scattered rows are memory-bound: fetch the rows a few labels ahead while scoring this one. */
  const vs_i64 ahead = 4;
  for (vs_i64 i = 0; i < n; i++) {
    if (i + ahead < n) {
      const char *next = (const char *)(xb + (size_t)aLabel[i + ahead] * d);
      for (size_t b = 0; b < d * sizeof(float); b += 64) __builtin_prefetch(next + b);
    }
    const float *y = xb + (size_t)aLabel[i] * d;
    aDist[i] = l2 ? faiss::fvec_L2sqr(aQuery, y, d) : faiss::fvec_inner_product(aQuery, y, d);
  }
  return 1;
}

/* Gives an IVF-Flat index Faiss's label -> (list, offset) lookup (8 bytes per vector), so exact distances to
** given labels read its lists (vs_faiss_flat_distances). Built from the lists themselves, never taken from a
** snapshot: a lookup read from a file is dropped and rebuilt, and ids that are not 0..ntotal-1 leave the index
** without one. 1 when the index has it. */
int vs_faiss_enable_lookup(FaissIndex_H *pIndex) {
  auto ivf = dynamic_cast<faiss::IndexIVFFlat *>(reinterpret_cast<faiss::Index *>(pIndex));
  if (ivf == nullptr || dynamic_cast<const faiss::ArrayInvertedLists *>(ivf->invlists) == nullptr) return 0;
  try {
    ivf->make_direct_map(false);
    ivf->make_direct_map(true);
    return 1;
  } catch (const std::exception &) {
    try {
      ivf->make_direct_map(false);
    } catch (const std::exception &) {
    }
  }
  return 0;
}

namespace {

/* The first inconsistency of a read index's structure that a search or an add would trust (array sizes, graph
** links, list counts), or "" when there is none. Faiss's reader checks little of this, and a forged snapshot
** with a valid checksum could otherwise make it read or write out of bounds. */
std::string structure_problem(const faiss::Index *index) {
  if (index->ntotal < 0 || index->d <= 0) return "negative size";
  const size_t n = (size_t)index->ntotal;
  if (auto pt = dynamic_cast<const faiss::IndexPreTransform *>(index)) {
    int d = pt->d;
    for (const faiss::VectorTransform *vt : pt->chain) {
      if (vt == nullptr || vt->d_in != d) return "transform dimensions do not chain";
      d = vt->d_out;
    }
    if (pt->index == nullptr || pt->index->d != d || pt->index->ntotal != pt->ntotal) return "transformed index does not match";
    return structure_problem(pt->index);
  }
  if (auto hnsw = dynamic_cast<const faiss::IndexHNSW *>(index)) {
    const faiss::HNSW &g = hnsw->hnsw;
    if (hnsw->storage == nullptr || hnsw->storage->ntotal != hnsw->ntotal || hnsw->storage->d != hnsw->d)
      return "HNSW storage does not match the graph";
    std::string inner = structure_problem(hnsw->storage);
    if (!inner.empty()) return inner;
    const auto &cum = g.cum_nneighbor_per_level;
    if (cum.size() < 2 || cum[0] != 0 || g.assign_probas.size() + 1 != cum.size()) return "HNSW level table is invalid";
    for (size_t l = 1; l < cum.size(); l++) {
      if (cum[l] < cum[l - 1] || cum[l] > (1 << 16)) return "HNSW level table is invalid";
    }
    if (g.levels.size() != n || g.offsets.size() != n + 1 || g.offsets[0] != 0 || g.offsets[n] != g.neighbors.size())
      return "HNSW node arrays have the wrong sizes";
    if (g.efConstruction < 1 || g.efConstruction > (1 << 20) || g.efSearch < 1) return "HNSW parameters are invalid";
    for (size_t i = 0; i < n; i++) {
      int lv = g.levels[i];
      if (lv < 1 || (size_t)lv >= cum.size() || g.offsets[i + 1] < g.offsets[i] ||
          g.offsets[i + 1] - g.offsets[i] != (size_t)cum[lv])
        return "HNSW node " + std::to_string(i) + " has an invalid level";
    }
    for (size_t i = 0; i < n; i++) {
      for (int l = 0; l < g.levels[i]; l++) {
        for (size_t j = g.offsets[i] + cum[l]; j < g.offsets[i] + cum[l + 1]; j++) {
          faiss::HNSW::storage_idx_t v = g.neighbors[j];
          if (v == -1) continue;
          if (v < 0 || (size_t)v >= n || g.levels[v] <= l) return "HNSW node " + std::to_string(i) + " has an invalid link";
        }
      }
    }
    if (n == 0 ? (g.entry_point != -1 || g.max_level != -1)
               : (g.entry_point < 0 || (size_t)g.entry_point >= n || g.max_level != g.levels[g.entry_point] - 1))
      return "HNSW entry point is invalid";
    return "";
  }
  if (auto ivf = dynamic_cast<const faiss::IndexIVF *>(index)) {
    if (ivf->quantizer == nullptr || ivf->quantizer->d != ivf->d || ivf->invlists == nullptr ||
        ivf->invlists->nlist != ivf->nlist || (ivf->is_trained && (size_t)ivf->quantizer->ntotal != ivf->nlist))
      return "IVF lists do not match the quantizer";
    std::string inner = structure_problem(ivf->quantizer);
    if (!inner.empty()) return inner;
    size_t total = 0;
    for (size_t l = 0; l < ivf->nlist; l++) total += ivf->invlists->list_size(l);
    if (total != n) return "IVF lists hold another number of vectors than the index";
    if (auto pq = dynamic_cast<const faiss::IndexIVFPQ *>(index)) {
      if (pq->pq.nbits > 16 || pq->pq.M * pq->pq.dsub != (size_t)pq->d) return "PQ shape is invalid";
    }
    return "";
  }
  if (auto pq = dynamic_cast<const faiss::IndexPQ *>(index)) {
    if (pq->pq.nbits > 16 || pq->pq.M * pq->pq.dsub != (size_t)pq->d || pq->pq.centroids.size() != pq->pq.d * pq->pq.ksub)
      return "PQ shape is invalid";
  }
  if (auto sq = dynamic_cast<const faiss::IndexScalarQuantizer *>(index)) {
    if (sq->sq.d != (size_t)sq->d) return "scalar quantizer shape is invalid";
  }
  if (auto codes = dynamic_cast<const faiss::IndexFlatCodes *>(index)) {
    if (codes->codes.size() != n * codes->code_size) return "stored codes have the wrong size";
  }
  return "";
}

}  // namespace

int vs_faiss_check_structure(FaissIndex_H *pIndex, char **pzErr) {
  try {
    std::string problem = structure_problem(reinterpret_cast<const faiss::Index *>(pIndex));
    if (problem.empty()) return SQLITE_OK;
    set_error(pzErr, "the index snapshot is damaged: " + problem);
  } catch (const std::exception &e) {
    set_error(pzErr, std::string("the index snapshot is damaged: ") + e.what());
  }
  return SQLITE_CORRUPT;
}

/*
** The Faiss part of a snapshot. Faiss's reader sizes every array exactly, so an index it has read is full: the
** first add after a load would reallocate and copy the whole of its largest arrays, and growing them at load
** (a reserve) copies them while the read ones are alive, doubling the peak memory of an open. The largest arrays
** (the codes of a flat index, or of an HNSW index's storage, and the HNSW graph's per-node arrays) are therefore
** written by vecstore itself, ahead of Faiss's write_index of the index with those arrays emptied, and read
** straight into vectors that already have room to grow. Layout:
**
**   uint32 flags              bit 0: the HNSW graph's levels, offsets and neighbors follow; bit 1: the flat codes
**   [levels]  uint64 n, n int32          (bit 0)
**   [offsets] uint64 n, n uint64         (bit 0)
**   [neighbors] uint64 n, n int32        (bit 0)
**   [codes]   uint64 n, n bytes          (bit 1)
**   [lists]   uint64 nlist, uint64 code_size, then per list: uint64 n, n int64 ids, n * code_size bytes (bit 2:
**             an IVF index's inverted lists; files written before this bit read as they are, Faiss reading them)
**   Faiss's write_index of the index, those arrays empty and the flat index's ntotal 0
**
** The flags are those of the index's type (behind any IndexPreTransform): a mismatch is a damaged snapshot.
*/
namespace {

enum { kGraph = 1, kCodes = 2, kLists = 4 };

/* The arrays of an index that the snapshot stores itself. */
struct Parts {
  faiss::IndexHNSW *hnsw = nullptr;
  faiss::IndexFlatCodes *flat = nullptr; /* the index itself, or the HNSW index's storage */
  faiss::ArrayInvertedLists *lists = nullptr; /* an IVF index's lists */
  uint32_t flags() const { return (hnsw ? kGraph : 0) | (flat ? kCodes : 0) | (lists ? kLists : 0); }
};

Parts parts_of(faiss::Index *index) {
  Parts p;
  while (auto pt = dynamic_cast<faiss::IndexPreTransform *>(index)) index = pt->index;
  if (auto hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) {
    p.hnsw = hnsw;
    index = hnsw->storage;
  }
  p.flat = dynamic_cast<faiss::IndexFlatCodes *>(index);
  if (auto ivf = dynamic_cast<faiss::IndexIVF *>(index)) p.lists = dynamic_cast<faiss::ArrayInvertedLists *>(ivf->invlists);
  return p;
}

/* Empties the parts' arrays (and the flat index's ntotal) for the lifetime of the object, so that Faiss writes
** the index without them; the destructor puts them back whatever happened in between. */
struct Detached {
  Parts p;
  std::vector<int> levels;
  std::vector<size_t> offsets;
  std::vector<faiss::HNSW::storage_idx_t> neighbors;
  std::vector<uint8_t> codes;
  faiss::Index::idx_t ntotal = 0;
  std::vector<std::vector<uint8_t>> listCodes; /* one per list: the lists themselves stay, emptied */
  std::vector<std::vector<faiss::Index::idx_t>> listIds;
  explicit Detached(const Parts &parts) : p(parts) {
    if (p.lists) {
      listCodes.resize(p.lists->nlist);
      listIds.resize(p.lists->nlist);
    }
    exchange();
  }
  ~Detached() { exchange(); }
  /* Swaps the arrays (and the flat ntotal) between the index and this object: detaches, or puts back. */
  void exchange() {
    if (p.hnsw) {
      levels.swap(p.hnsw->hnsw.levels);
      offsets.swap(p.hnsw->hnsw.offsets);
      neighbors.swap(p.hnsw->hnsw.neighbors);
    }
    if (p.flat) {
      codes.swap(p.flat->codes);
      std::swap(ntotal, p.flat->ntotal);
    }
    for (size_t i = 0; p.lists && i < p.lists->nlist; i++) {
      listCodes[i].swap(p.lists->codes[i]);
      listIds[i].swap(p.lists->ids[i]);
    }
  }
};

template <class T>
bool write_array(FILE *f, const std::vector<T> &v) {
  uint64_t n = v.size();
  return fwrite(&n, sizeof(n), 1, f) == 1 && (n == 0 || fwrite(v.data(), sizeof(T), v.size(), f) == v.size());
}

/* Faiss's reader over a snapshot stream. */
struct SnapIOReader : faiss::IOReader {
  const VsSnapIn *in;
  explicit SnapIOReader(const VsSnapIn *p) : in(p) {}
  size_t operator()(void *ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return 0;
    return in->xRead(in->pCtx, ptr, size * nitems) / size;
  }
};

/* Reads the section from the stream, never past the nLeft bytes the snapshot still holds. */
struct SectionReader {
  const VsSnapIn *in;
  uint64_t nLeft;
  std::string err;
  bool read(void *p, size_t n) {
    if (n > nLeft || in->xRead(in->pCtx, p, n) != n) {
      err = "the index snapshot is truncated";
      return false;
    }
    nLeft -= n;
    return true;
  }
};

/* Reads one array into v, with capacity for about nLabel / 8 + 1024 more vectors' worth of elements (at most a
** quarter more plus 16 MiB): what the first adds after the load need, without a reallocation. The element count
** is checked against the bytes left before anything is allocated. */
template <class T>
bool read_array(SectionReader &r, std::vector<T> &v, vs_i64 nLabel, const char *zWhat) {
  uint64_t n = 0;
  if (!r.read(&n, sizeof(n))) return false;
  if (n > r.nLeft / sizeof(T)) {
    r.err = "the index snapshot is damaged: its " + std::string(zWhat) + " claim " + std::to_string(n) +
            " elements, more than it holds";
    return false;
  }
  uint64_t nExtra = 0;
  if (nLabel > 0) {
    uint64_t nPer = (n + (uint64_t)nLabel - 1) / (uint64_t)nLabel;
    uint64_t nCap = n / 4 + (16u << 20) / sizeof(T);
    nExtra = std::min<uint64_t>(nPer * ((uint64_t)nLabel / 8 + 1024), nCap);
  }
  v.reserve((size_t)(n + nExtra));
  advise_huge_pages(v);
  v.resize((size_t)n);
  return n == 0 || r.read(v.data(), (size_t)n * sizeof(T));
}

/* Reads the lists section into per-list vectors with an eighth more room (plus 16 entries) each, so that the first
** commits after a load append without reallocating and first-touching a whole list. Counts are checked against
** the bytes left before anything is allocated. */
bool read_lists(SectionReader &r, std::vector<std::vector<faiss::Index::idx_t>> &ids,
                std::vector<std::vector<uint8_t>> &codes, uint64_t *pnCodeSize, uint64_t *pnTotal) {
  uint64_t head[2];
  if (!r.read(head, sizeof(head))) return false;
  uint64_t nList = head[0], nCodeSize = head[1];
  if (nList == 0 || nList > r.nLeft / sizeof(uint64_t) || nCodeSize == 0 || nCodeSize > (1u << 20)) {
    r.err = "the index snapshot is damaged: its inverted lists claim " + std::to_string(nList) + " lists of " +
            std::to_string(nCodeSize) + "-byte codes";
    return false;
  }
  ids.resize(nList);
  codes.resize(nList);
  uint64_t nTotal = 0;
  for (uint64_t i = 0; i < nList; i++) {
    uint64_t n = 0;
    if (!r.read(&n, sizeof(n))) return false;
    if (n > r.nLeft / (sizeof(faiss::Index::idx_t) + nCodeSize)) {
      r.err = "the index snapshot is damaged: inverted list " + std::to_string(i) + " claims " + std::to_string(n) +
              " entries, more than it holds";
      return false;
    }
    ids[i].reserve(n + n / 8 + 16);
    codes[i].reserve((n + n / 8 + 16) * nCodeSize);
    ids[i].resize(n);
    codes[i].resize(n * nCodeSize);
    if (n > 0 && (!r.read(ids[i].data(), n * sizeof(faiss::Index::idx_t)) || !r.read(codes[i].data(), n * nCodeSize))) {
      return false;
    }
    nTotal += n;
  }
  *pnCodeSize = nCodeSize;
  *pnTotal = nTotal;
  return true;
}

bool lists_nonempty(const faiss::ArrayInvertedLists *lists) {
  for (size_t i = 0; i < lists->nlist; i++) {
    if (!lists->ids[i].empty() || !lists->codes[i].empty()) return true;
  }
  return false;
}

/* The index behind any IndexPreTransform (the IVF index whose lists Parts found). */
faiss::Index *ivf_of(faiss::Index *index) {
  while (auto pt = dynamic_cast<faiss::IndexPreTransform *>(index)) index = pt->index;
  return index;
}

}  // namespace

int vs_faiss_snapshot_write(FaissIndex_H *pIndex, FILE *f, char **pzErr) {
  faiss::Index *index = reinterpret_cast<faiss::Index *>(pIndex);
  try {
    Parts p = parts_of(index);
    uint32_t flags = p.flags();
    bool ok = fwrite(&flags, sizeof(flags), 1, f) == 1;
    if (ok && p.hnsw) {
      ok = write_array(f, p.hnsw->hnsw.levels) && write_array(f, p.hnsw->hnsw.offsets) &&
           write_array(f, p.hnsw->hnsw.neighbors);
    }
    if (ok && p.flat) ok = write_array(f, p.flat->codes);
    if (ok && p.lists) {
      uint64_t head[2] = {p.lists->nlist, p.lists->code_size};
      ok = fwrite(head, sizeof(head), 1, f) == 1;
      for (size_t i = 0; ok && i < p.lists->nlist; i++) {
        uint64_t n = p.lists->ids[i].size();
        ok = fwrite(&n, sizeof(n), 1, f) == 1 &&
             (n == 0 || (fwrite(p.lists->ids[i].data(), sizeof(faiss::Index::idx_t), n, f) == n &&
                         fwrite(p.lists->codes[i].data(), p.lists->code_size, n, f) == n));
      }
    }
    if (!ok) {
      set_error(pzErr, "writing the index snapshot failed");
      return SQLITE_ERROR;
    }
    Detached detached(p);
    faiss::write_index(index, f);
    return SQLITE_OK;
  } catch (...) {
    return caught("writing the Faiss index failed", pzErr);
  }
}

int vs_faiss_snapshot_read(const VsSnapIn *pIn, vs_i64 nAvail, vs_i64 nLabel, FaissIndex_H **ppIndex, char **pzErr) {
  *ppIndex = nullptr;
  std::unique_ptr<faiss::Index> index;
  try {
    SectionReader r{pIn, nAvail > 0 ? (uint64_t)nAvail : 0, ""};
    std::vector<int> levels;
    std::vector<size_t> offsets;
    std::vector<faiss::HNSW::storage_idx_t> neighbors;
    std::vector<uint8_t> codes;
    std::vector<std::vector<faiss::Index::idx_t>> listIds;
    std::vector<std::vector<uint8_t>> listCodes;
    uint64_t nListTotal = 0, nCodeSize = 0;
    uint32_t flags = 0;
    bool ok = r.read(&flags, sizeof(flags));
    if (ok && (flags & ~(uint32_t)(kGraph | kCodes | kLists)) != 0) {
      r.err = "the index snapshot is damaged: unknown flags " + std::to_string(flags);
      ok = false;
    }
    if (ok && (flags & kGraph)) {
      ok = read_array(r, levels, nLabel, "HNSW levels") && read_array(r, offsets, nLabel, "HNSW offsets") &&
           read_array(r, neighbors, nLabel, "HNSW neighbors");
    }
    if (ok && (flags & kCodes)) ok = read_array(r, codes, nLabel, "codes");
    if (ok && (flags & kLists)) ok = read_lists(r, listIds, listCodes, &nCodeSize, &nListTotal);
    if (!ok) {
      set_error(pzErr, r.err);
      return SQLITE_CORRUPT;
    }
    /* Everything so far was copied as bytes; Faiss parses what follows only once the snapshot is verified. */
    int rcSeal = pIn->xSeal(pIn->pCtx, pzErr);
    if (rcSeal != SQLITE_OK) return rcSeal;
    try {
      SnapIOReader reader(pIn);
      index.reset(faiss::read_index(&reader, 0));
    } catch (const std::exception &e) {
      const faiss::FaissException *fe = dynamic_cast<const faiss::FaissException *>(&e);
      set_error(pzErr, "reading the Faiss index from the snapshot failed: " + (fe ? faiss_message(*fe) : e.what()));
      return SQLITE_CORRUPT;
    }
    Parts p = parts_of(index.get());
    std::string problem;
    /* An IVF snapshot written before vecstore stored the lists itself: Faiss has read them. */
    uint32_t expect = (flags & kLists) ? p.flags() : (p.flags() & ~(uint32_t)kLists);
    if (expect != flags) {
      problem = "its stored arrays do not match its index type";
    } else if (p.hnsw && (!p.hnsw->hnsw.levels.empty() || !p.hnsw->hnsw.offsets.empty() ||
                          !p.hnsw->hnsw.neighbors.empty())) {
      problem = "it stores the HNSW graph twice";
    } else if (p.flat && (p.flat->ntotal != 0 || !p.flat->codes.empty())) {
      problem = "it stores the codes twice";
    } else if (p.flat && (p.flat->code_size == 0 ? !codes.empty() : codes.size() % p.flat->code_size != 0)) {
      problem = "its codes are not a whole number of vectors";
    } else if ((flags & kLists) && (p.lists->nlist != listIds.size() || p.lists->code_size != nCodeSize)) {
      problem = "its inverted lists do not match the index (list count or code size)";
    } else if ((flags & kLists) && (lists_nonempty(p.lists) ||
                                     nListTotal != (uint64_t)static_cast<faiss::IndexIVF *>(ivf_of(index.get()))->ntotal)) {
      problem = "its inverted lists are stored twice or do not hold the index's vectors";
    }
    if (!problem.empty()) {
      set_error(pzErr, "the index snapshot is damaged: " + problem);
      return SQLITE_CORRUPT;
    }
    if (p.hnsw) {
      p.hnsw->hnsw.levels.swap(levels);
      p.hnsw->hnsw.offsets.swap(offsets);
      p.hnsw->hnsw.neighbors.swap(neighbors);
    }
    if (p.flat) {
      p.flat->codes.swap(codes);
      p.flat->ntotal = p.flat->code_size ? (faiss::Index::idx_t)(p.flat->codes.size() / p.flat->code_size) : 0;
    }
    for (size_t i = 0; (flags & kLists) && i < listIds.size(); i++) {
      p.lists->ids[i].swap(listIds[i]);
      p.lists->codes[i].swap(listCodes[i]);
    }
    *ppIndex = reinterpret_cast<FaissIndex_H *>(index.release());
    return SQLITE_OK;
  } catch (const std::bad_alloc &) {
    return SQLITE_NOMEM;
  } catch (const std::exception &e) {
    set_error(pzErr, std::string("reading the index snapshot failed: ") + e.what());
  }
  return SQLITE_CORRUPT;
}

int vs_faiss_read_index(const VsSnapIn *pIn, FaissIndex_H **ppIndex, char **pzErr) {
  *ppIndex = nullptr;
  try {
    SnapIOReader reader(pIn);
    *ppIndex = reinterpret_cast<FaissIndex_H *>(faiss::read_index(&reader, 0));
    return SQLITE_OK;
  } catch (const std::bad_alloc &) {
    return SQLITE_NOMEM;
  } catch (const std::exception &e) {
    const faiss::FaissException *fe = dynamic_cast<const faiss::FaissException *>(&e);
    set_error(pzErr, "reading the Faiss index from the snapshot failed: " + (fe ? faiss_message(*fe) : std::string(e.what())));
  }
  return SQLITE_CORRUPT;
}

int vs_faiss_is_graph_over_flat(FaissIndex_H *pIndex) {
  auto hnsw = dynamic_cast<faiss::IndexHNSW *>(reinterpret_cast<faiss::Index *>(pIndex));
  return hnsw != nullptr && dynamic_cast<faiss::IndexFlat *>(hnsw->storage) != nullptr;
}
