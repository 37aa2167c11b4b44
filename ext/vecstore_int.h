/*
** vecstore internal interfaces. One block per source file in ext/, in the order of the layers:
** vector -> i64map -> config -> faiss_shim -> index -> pending -> storage -> sync -> search -> vtab.
** Errors travel through `char **pzErr` (an sqlite3_malloc'd message starting with "vecstore: ") and an
** SQLite result code.
*/
#ifndef VECSTORE_INT_H
#define VECSTORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SQLITE_CORE
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif

#define VECSTORE_VERSION "0.1.0"
#define VS_MAX_DIM 65536

typedef sqlite3_int64 i64;
/* The smallest rowid marks a tombstone in label maps, so it is reserved. */
#define VS_TOMBSTONE ((i64)(-0x7fffffffffffffffLL - 1))

/* Formats an error message "vecstore: <fmt...>" into *pzErr (replacing any previous one). */
void vs_error(char **pzErr, const char *zFmt, ...);

/**************************************************************************************************
** vector.c: vector values and the vector SQL functions.
*/
typedef enum VsMetric { VS_METRIC_L2 = 0, VS_METRIC_IP = 1, VS_METRIC_COSINE = 2 } VsMetric;

/* Parses a vector from a BLOB (float32 little-endian) or JSON array text. On success *paVec is an
** sqlite3_malloc'd array of *pnDim finite floats. nExpect > 0 requires that many dimensions.
** zWhat names the value in error messages ("embedding", "query vector"). */
int vs_vector_parse(sqlite3_value *pVal, int nExpect, const char *zWhat, float **paVec, int *pnDim,
                    char **pzErr);
/* Vectors stored in or searched against a table have a squared norm of at most FLT_MAX / 4, so no distance
** between two of them overflows float32 (|a-b|^2 <= 2|a|^2 + 2|b|^2, |a.b| <= |a||b|): SQLITE_OK, or SQLITE_ERROR
** with a message naming zWhat and the norm. */
#define VS_MAX_SQUARED_NORM 8.5e37
int vs_vector_check_magnitude(const float *a, int nDim, const char *zWhat, char **pzErr);
/* The JSON number z[0..n) as text strtod/strtof read the same in any locale (the decimal point swapped for
** the locale's): aBuf when it fits in nBuf bytes, else sqlite3_malloc'd; NULL when out of memory. */
char *vs_number_for_strtod(const char *z, i64 n, char *aBuf, size_t nBuf);
/* The distance of SPEC.md: l2 squared Euclidean, ip negated inner product, cosine 1 - cosine similarity. */
float vs_distance(const float *a, const float *b, int nDim, VsMetric eMetric);
/* Relevance score from a distance (SPEC.md "score"). */
double vs_score(double rDistance, VsMetric eMetric);
/* Scales a to unit L2 norm in place (a zero vector stays zero). */
void vs_normalize(float *a, int nDim);
int vs_metric_parse(const char *z, VsMetric *peMetric);
const char *vs_metric_name(VsMetric eMetric);
int vs_vector_register(sqlite3 *db);

/**************************************************************************************************
** embed.c: the built-in lexical embedder (vecstore_embed_hash).
*/
/* Writes the hash embedding of zText[0..nText) into aOut[0..nDim). */
int vs_embed_hash(const char *zText, int nText, int nDim, float *aOut);
int vs_embed_register(sqlite3 *db);

/**************************************************************************************************
** split.c: vecstore_split(text, chunk_size [, chunk_overlap [, separator]]), table-valued, LangChain's
** CharacterTextSplitter.
*/
int vs_split_register(sqlite3 *db);

/**************************************************************************************************
** filter.c: vecstore_filter(metadata, filter), LangChain's metadata filter language.
*/
int vs_filter_register(sqlite3 *db);

/**************************************************************************************************
** i64map.c: open-addressing hash map from int64 keys to int64 values.
*/
typedef struct VsI64Map {
  i64 *aKey;
  i64 *aVal;
  unsigned char *aUsed; /* 0 empty, 1 used, 2 deleted */
  i64 nSlot;            /* power of two, or 0 */
  i64 nUsed;            /* live entries */
  i64 nFill;            /* live + deleted slots */
} VsI64Map;

void vs_i64map_init(VsI64Map *p);
void vs_i64map_clear(VsI64Map *p);
int vs_i64map_put(VsI64Map *p, i64 iKey, i64 iVal); /* SQLITE_OK or SQLITE_NOMEM */
/* Makes room for nEntry entries in all, so that filling the map up to nEntry never rebuilds it (a load that knows
** its size). SQLITE_OK or SQLITE_NOMEM (map unchanged). */
int vs_i64map_reserve(VsI64Map *p, i64 nEntry);
/* Starts loading the slot of iKey into the cache (for batches of lookups a few keys ahead). */
void vs_i64map_prefetch(const VsI64Map *p, i64 iKey);
int vs_i64map_get(const VsI64Map *p, i64 iKey, i64 *piVal); /* 1 if found */
int vs_i64map_remove(VsI64Map *p, i64 iKey);                 /* 1 if it was there */

/**************************************************************************************************
** config.c: CREATE VIRTUAL TABLE arguments.
*/
/* A typed metadata column declared in CREATE (`page INTEGER`), stored in <name>_docs with an index. */
typedef enum VsColType { VS_TYPE_INTEGER, VS_TYPE_REAL, VS_TYPE_TEXT, VS_TYPE_BLOB } VsColType;
typedef struct VsColumn {
  char *zName;
  VsColType eType;
} VsColumn;
#define VS_MAX_COLUMNS 64

typedef struct VsConfig {
  char *zDb;           /* schema name ("main", an ATTACHed name, "temp") */
  char *zName;         /* table name */
  int nDim;
  VsMetric eMetric;
  char *zIndex;        /* Faiss index_factory description */
  char *zSearchParams; /* default search parameters, or NULL */
  char *zEmbedder;     /* embedder function name, or NULL */
  int nCol;            /* declared metadata columns */
  VsColumn *aCol;
} VsConfig;

const char *vs_coltype_name(VsColType eType);

/* Parses argv[3..] of xCreate/xConnect into a new VsConfig. bCreate validates against Faiss too. */
int vs_config_parse(int argc, const char *const *argv, int bCreate, VsConfig **ppCfg, char **pzErr);
void vs_config_free(VsConfig *pCfg);
/* Replaces *pz with a copy of z (NULL allowed). */
int vs_config_set_string(char **pz, const char *z);

/**************************************************************************************************
** faiss_shim.cpp: what Faiss's C API lacks (search with a selector and per-query parameters).
*/
typedef struct FaissIndex_H VsFaissIndex; /* same layout as the C API's FaissIndex */

typedef struct VsFaissSearch {
  const float *aQuery; /* one query, already normalised for cosine */
  i64 k;
  const char *zParams; /* "efSearch=64,nprobe=8" for this query only, or NULL */
  int (*xKeep)(void *pCtx, i64 iLabel); /* NULL: keep every label */
  void *pKeepCtx;
  float *aDist;        /* out: k raw Faiss distances */
  i64 *aLabel;         /* out: k labels, -1 where fewer were found */
} VsFaissSearch;

/* Runs one search. SQLITE_OK, or SQLITE_ERROR with *pzErr (bad parameter names, Faiss exceptions). */
int vs_faiss_search(VsFaissIndex *pIndex, VsFaissSearch *pReq, char **pzErr);
/* Validates a parameter string for pIndex without searching ("" and NULL are valid). */
int vs_faiss_check_params(VsFaissIndex *pIndex, const char *zParams, char **pzErr);
/* Makes zParams the index's own search parameters (the table's default search_params): known fields
** (efSearch, nprobe, max_codes) go back to Faiss's defaults first, then zParams (NULL or "" allowed) applies. */
int vs_faiss_apply_params(VsFaissIndex *pIndex, const char *zParams, char **pzErr);
/* Sets the OpenMP thread count Faiss uses from now on in this thread (0: all cores). */
void vs_faiss_threads(int nThread);
/* For an IVF index (possibly behind a transform): 1, with the nprobe this query would use and nlist. */
int vs_faiss_ivf_probe(VsFaissIndex *pIndex, const char *zParams, i64 *pnProbe, i64 *pnList);
/* Makes room for nMore vectors in a flat or HNSW index's arrays, so the first add after a load does not copy
** the whole index into a reallocation (only for version 1 snapshots, read by Faiss alone: it copies once). */
void vs_faiss_reserve(VsFaissIndex *pIndex, i64 nMore);
/* Writes the Faiss part of a snapshot: the index's largest arrays (a flat index's codes, an HNSW index's graph
** and its storage's codes) in vecstore's own section, then Faiss's write_index of the rest. SQLITE_OK, or an
** error with *pzErr. */
int vs_faiss_snapshot_write(VsFaissIndex *pIndex, FILE *f, char **pzErr);
/* A stored snapshot being read (storage.c), in one pass. xRead copies the next n bytes (fewer only at the end) into
** aOut and returns how many it copied; each chunk is checksummed as the stream reaches it. xSeal verifies the
** whole snapshot against what its commit recorded before Faiss parses a byte of it: the reader calls it once it
** has copied its own arrays (bytes only) and before it hands the stream to Faiss; reads after it return the
** verified rest. SQLITE_OK, or SQLITE_CORRUPT (SQLITE_NOMEM) with *pzErr. */
typedef struct VsSnapIn {
  size_t (*xRead)(void *pCtx, void *aOut, size_t n);
  int (*xSeal)(void *pCtx, char **pzErr);
  void *pCtx;
} VsSnapIn;
/* Reads what vs_faiss_snapshot_write wrote, never past the nAvail bytes left in the snapshot, into arrays with
** room for about nLabel / 8 + 1024 more vectors; the arrays are copied as bytes, then the stream is sealed before
** Faiss's reader parses the rest. SQLITE_OK with *ppIndex (structure not yet checked), or SQLITE_CORRUPT (or
** SQLITE_NOMEM) with *pzErr. */
int vs_faiss_snapshot_read(const VsSnapIn *pIn, i64 nAvail, i64 nLabel, VsFaissIndex **ppIndex, char **pzErr);
/* Faiss's read_index of the rest of a (sealed) stream: a version 1 snapshot's index. SQLITE_OK with *ppIndex, or
** SQLITE_CORRUPT (SQLITE_NOMEM) with *pzErr. */
int vs_faiss_read_index(const VsSnapIn *pIn, VsFaissIndex **ppIndex, char **pzErr);
/* Raw distances from aQuery to the labels' own full-precision vectors: 1, or 0 when the index (quantized,
** transformed, IVF without its label lookup) keeps none. */
int vs_faiss_flat_distances(VsFaissIndex *pIndex, const float *aQuery, const i64 *aLabel, i64 n, float *aDist);
/* Gives an IVF-Flat index a label lookup built from its lists (never read from a snapshot), so that
** vs_faiss_flat_distances can read its vectors: 1 when it has one now, 0 for other index types. */
int vs_faiss_enable_lookup(VsFaissIndex *pIndex);
/* 1 for an HNSW index straight over a flat storage (no transform, no quantizer): its distances are exact, so
** vectors added since the graph was last extended can wait in an exact flat delta beside it. */
int vs_faiss_is_graph_over_flat(VsFaissIndex *pIndex);
/* Checks the structure of an index Faiss has just read (graph links, array sizes, list counts) so that no forged
** snapshot makes a search or an add leave its arrays: SQLITE_OK, or SQLITE_CORRUPT with *pzErr. */
int vs_faiss_check_structure(VsFaissIndex *pIndex, char **pzErr);
/* The fewest vectors the index can be trained on (IVF nlist, PQ 2^nbits, ...; 1 when any will do). */
i64 vs_faiss_train_minimum(VsFaissIndex *pIndex);

/**************************************************************************************************
** index.c: one Faiss index with the dense label -> rowid map and tombstones. While a trainable index is
** untrained, an exact flat index of the same metric stands in for it.
*/
typedef struct VsIndex {
  VsFaissIndex *pFaiss;
  int nDim;
  VsMetric eMetric;
  char *zDesc;     /* factory description of the real index */
  int bStandIn;    /* pFaiss is the exact stand-in for an untrained index */
  i64 *aRowid;     /* label -> rowid, VS_TOMBSTONE for a tombstone */
  i64 nLabel;
  i64 nAlloc;
  i64 nTomb;
  VsI64Map live;   /* rowid -> label of live vectors */
  int bExact;      /* searches are exhaustive (Flat, or the stand-in) */
  VsFaissIndex *pDelta; /* HNSW over Flat: an exact flat index of the labels nMain.. (NULL until first used) */
  i64 nMain;       /* labels below nMain are in pFaiss, the rest in pDelta */
  i64 nTrainMin;   /* for a stand-in: the fewest vectors the real index trains on */
  VsFaissIndex *pShape; /* for a stand-in: the real index, untrained (validates search parameters) */
  uint64_t iStamp; /* new, never used before, at creation and after every add and remove */
} VsIndex;

/* Creates an empty index for desc (the stand-in when desc needs training). */
int vs_index_new(int nDim, VsMetric eMetric, const char *zDesc, VsIndex **ppIdx, char **pzErr);
void vs_index_free(VsIndex *p);
/* Makes room for nMore more vectors at once (the label map, the rowid array, Faiss's arrays), so that adding
** them does not grow each array step by step. SQLITE_OK or SQLITE_NOMEM (the index unchanged and usable). */
int vs_index_reserve(VsIndex *p, i64 nMore);
/* Adds n vectors (row-major) for the given rowids, replacing any live vector of the same rowid. */
int vs_index_add(VsIndex *p, i64 n, const i64 *aRowid, const float *aVec, char **pzErr);
/* Tombstones the vector of iRowid if there is one. */
void vs_index_remove(VsIndex *p, i64 iRowid);
/* Adds the delta's vectors to the graph at once and empties it (also done by vs_index_add when the delta is
** full, and before a snapshot is written). SQLITE_OK, or an error with *pzErr (the index unchanged). */
int vs_index_fold(VsIndex *p, char **pzErr);
/* Does the index keep full-precision vectors (Flat, HNSW over Flat), so vs_index_exact_distances works? */
int vs_index_keeps_vectors(VsIndex *p);
/* Exact distances from aQuery to the live vectors of n rowids, out of the index's own full-precision vectors
** (no SQLite reads): SQLITE_OK with aDist[i] NAN where a rowid has no live vector, or SQLITE_NOTFOUND when the
** index keeps no full-precision vectors. */
int vs_index_exact_distances(VsIndex *p, const float *aQuery, i64 n, const i64 *aRowid, float *aDist);
i64 vs_index_count(const VsIndex *p); /* live vectors */
/* Checks that desc builds a usable index for nDim/eMetric and that zParams (may be NULL) applies to it. */
int vs_index_validate(int nDim, VsMetric eMetric, const char *zDesc, const char *zParams, char **pzErr);
/* Replaces the exact stand-in of an empty index by the real index trained on n vectors. */
int vs_index_train(VsIndex *p, i64 n, const float *aVec, char **pzErr);
/* Checks per-query search parameters against the real index (also while the stand-in serves). */
int vs_index_check_params(VsIndex *p, const char *zParams, char **pzErr);
/* Applies default search parameters to the real index (ignored by the exact stand-in). */
int vs_index_apply_params(VsIndex *p, const char *zParams, char **pzErr);
/* Minimum number of vectors the real index needs to train, and the automatic training threshold. */
i64 vs_index_train_minimum(const VsIndex *p);
i64 vs_index_train_threshold(const VsIndex *p);
/* Searches the k nearest live labels; kept as in VsFaissSearch, and only labels whose bit is set in aBit when
** it is given (one bit per label, built for this iStamp; tombstones clear). Distances come back as SPEC
** distances, sorted; *pnOut <= k results (rowids). */
int vs_index_search(VsIndex *p, const float *aQuery, i64 k, const char *zParams,
                    int (*xKeep)(void *, i64), void *pCtx, const uint64_t *aBit, float *aDist, i64 *aRowid,
                    i64 *pnOut, char **pzErr);
/* Serialises to / restores from a stdio stream: header, label map, Faiss index bytes. */
int vs_index_write(VsIndex *p, FILE *f, char **pzErr);
/* nByte: the stream's size, bounding what the header may claim. */
int vs_index_read(const VsSnapIn *pIn, i64 nByte, int nDim, VsMetric eMetric, VsIndex **ppIdx, char **pzErr);

/**************************************************************************************************
** pending.c: the open transaction's changes to vectors, with savepoints as positions.
*/
typedef struct VsPendingOp {
  i64 iRowid;
  float *aVec; /* NULL: the row's vector is deleted (or a command op) */
  i64 iPrev;   /* previous op index for the same rowid, or -1 */
  int eCmd;    /* 0 for a vector op; else VS_CMD_* bits of a command carried out at commit */
} VsPendingOp;

#define VS_CMD_REBUILD 1  /* rebuild the index from the stored vectors */
#define VS_CMD_TRAIN 2    /* train the index (a rebuild that trains) */
#define VS_CMD_SNAPSHOT 4 /* compact if needed and write a fresh snapshot */

typedef struct VsPending {
  int nDim;
  VsPendingOp *aOp;
  i64 nOp;
  i64 nAlloc;
  VsI64Map last; /* rowid -> index of its latest op */
  i64 *aSave;    /* savepoint level -> nOp when it began */
  int nSave;
  int nSaveAlloc;
} VsPending;

void vs_pending_init(VsPending *p, int nDim);
void vs_pending_clear(VsPending *p);
/* Records a new vector (copied) or, with aVec NULL, a deletion. */
int vs_pending_put(VsPending *p, i64 iRowid, const float *aVec);
/* The latest op for iRowid, or NULL when the transaction has not touched it. */
const VsPendingOp *vs_pending_get(const VsPending *p, i64 iRowid);
int vs_pending_savepoint(VsPending *p, int iLevel);
void vs_pending_rollback_to(VsPending *p, int iLevel);
void vs_pending_release(VsPending *p, int iLevel);
/* Records a command (VS_CMD_* bits) at the current position, so ROLLBACK TO undoes it like any change. */
int vs_pending_command(VsPending *p, int eCmd);
/* The VS_CMD_* bits of every command still pending. */
int vs_pending_commands(const VsPending *p);
/* Drops every op (they were applied to the index) but keeps the open savepoint levels, now all at 0. */
void vs_pending_forget(VsPending *p);
int vs_pending_is_empty(const VsPending *p);

/**************************************************************************************************
** storage.c: shadow tables <name>_config, _docs, _vectors, _log, _snapshot.
*/
typedef struct VsStorage VsStorage;

extern const char *const vs_shadow_suffixes[]; /* NULL-terminated */

int vs_storage_create(sqlite3 *db, const VsConfig *pCfg, char **pzErr);
int vs_storage_open(sqlite3 *db, const VsConfig *pCfg, VsStorage **pp);
void vs_storage_close(VsStorage *p);
int vs_storage_drop(VsStorage *p, char **pzErr);
int vs_storage_rename(VsStorage *p, const char *zNew, char **pzErr);

/* Mutable configuration rows (index, search_params). *pz is sqlite3_malloc'd or NULL. */
int vs_storage_config_get(VsStorage *p, const char *zKey, char **pz, char **pzErr);
int vs_storage_config_put(VsStorage *p, const char *zKey, const char *zValue, char **pzErr);

/* Documents. */
/* apCol: the declared columns' values (NULL when there are none). */
int vs_storage_doc_insert(VsStorage *p, i64 *piRowid, int bRowidGiven, const char *zId,
                          sqlite3_value *pContent, const char *zMeta, sqlite3_value **apCol, char **pzErr);
int vs_storage_doc_exists(VsStorage *p, i64 iRowid, int *pbExists);
int vs_storage_doc_rowid_of_id(VsStorage *p, const char *zId, i64 *piRowid, int *pbFound);
int vs_storage_doc_delete(VsStorage *p, i64 iRowid);
int vs_storage_doc_update(VsStorage *p, i64 iRowid, const char *zId, sqlite3_value *pContent,
                          const char *zMeta, sqlite3_value **apCol, char **pzErr);
/* Prepares a statement on the shadow tables: {docs}, {vectors}... name them, {cols} lists the declared
** columns (", c1, c2"). */
int vs_storage_prepare(VsStorage *p, const char *zTemplate, sqlite3_stmt **pp);

/* Statements owned by one cursor at a time, kept in a small pool of idle ones. Documents come back as
** (rowid, id, content, metadata, declared columns...); VS_CSTMT_VECTOR as (embedding) for rowid ?1. */
typedef enum VsCursorStmt {
  VS_CSTMT_SCAN,     /* every document in rowid order */
  VS_CSTMT_ROWID,    /* the document with rowid ?1 */
  VS_CSTMT_ID,       /* the document with id ?1 */
  VS_CSTMT_VECTOR,   /* the embedding of rowid ?1 */
  VS_CSTMT_COUNT
} VsCursorStmt;
int vs_storage_cursor_stmt(VsStorage *p, VsCursorStmt e, sqlite3_stmt **pp);
void vs_storage_cursor_stmt_release(VsStorage *p, VsCursorStmt e, sqlite3_stmt *pStmt);

/* The json_type() of z ("object", "array", ...), or *pzType NULL when z is not well-formed JSON. */
int vs_storage_json_type(VsStorage *p, const char *z, char **pzType);

/* Vectors. */
int vs_storage_vector_put(VsStorage *p, i64 iRowid, const float *aVec, int nDim);
int vs_storage_vector_delete(VsStorage *p, i64 iRowid);
/* Copies the vector of iRowid into aOut (nDim floats); SQLITE_DONE when there is none. */
int vs_storage_vector_get(VsStorage *p, i64 iRowid, float *aOut, char **pzErr);
/* Iterates every stored vector in rowid order. */
int vs_storage_vector_scan(VsStorage *p, int (*xRow)(void *, i64, const float *), void *pCtx,
                           char **pzErr);
int vs_storage_vector_count(VsStorage *p, i64 *pn);

/* State: the snapshot generation and the change log. */
int vs_storage_state(VsStorage *p, i64 *piGen, i64 *piLogSeq, char **pzErr);
/* Log entry ops: the row's vector was set, deleted, or only its declared columns changed. */
#define VS_LOG_SET 0
#define VS_LOG_DELETE 1
#define VS_LOG_COLUMNS 2
/* Appends a log entry (eOp one of VS_LOG_*) and returns its sequence number. */
int vs_storage_log_append(VsStorage *p, i64 iRowid, int eOp, i64 *piSeq);
int vs_storage_log_count(VsStorage *p, i64 *pn);
/* Calls xEntry for every log entry after iAfter, in order. */
int vs_storage_log_scan(VsStorage *p, i64 iAfter, int (*xEntry)(void *, i64 iSeq, i64 iRowid, int eOp),
                        void *pCtx);
/* Writes a new snapshot with xWrite(ctx, FILE*), clears the log and bumps the generation. */
int vs_storage_snapshot_write(VsStorage *p, int (*xWrite)(void *, FILE *, char **), void *pCtx,
                              i64 *piGen, char **pzErr);
/* Calls xRead(ctx, pIn, nByte) with a one-pass stream over the stored snapshot (VsSnapIn): its chunks are
** checksummed as the stream reaches them, and pIn->xSeal verifies the whole before Faiss parses any of it (the
** rest read into memory when it is small, else a first pass over every chunk); a reader that never seals is
** verified at the end. SQLITE_DONE if there is no snapshot; SQLITE_CORRUPT with *pzErr when the checksum, sizes
** or chunk numbers do not match what the commit recorded, whatever xRead returned. */
int vs_storage_snapshot_read(VsStorage *p, int (*xRead)(void *, const VsSnapIn *, i64 nByte, char **), void *pCtx,
                             char **pzErr);
/* Sum of snapshot chunk sizes and the chunk count. */
int vs_storage_snapshot_info(VsStorage *p, i64 *pnByte, i64 *pnChunk);
/* PRAGMA data_version-like counter of the file behind the table. */
unsigned int vs_storage_data_version(VsStorage *p);
sqlite3 *vs_storage_db(VsStorage *p);


/**************************************************************************************************
** columns.c: a connection's in-memory copy of the declared columns (committed state) and search conditions
** evaluated on it with SQLite's comparison rules.
*/
typedef struct VsColumns VsColumns;
/* Brings *pp (created when NULL) to the committed state iGen/iLogSeq of the table: reloaded whole for a new
** generation, else the rows of newer log entries are read again (*pbRead set when anything was read). On error
** *pp is freed and NULL. */
int vs_columns_sync(VsStorage *pStore, int nCol, i64 iGen, i64 iLogSeq, VsColumns **pp, int *pbRead);
void vs_columns_free(VsColumns *p);
i64 vs_columns_count(const VsColumns *p); /* rows held */

typedef enum VsCondOp {
  VS_COND_EQ, VS_COND_NE, VS_COND_LT, VS_COND_LE, VS_COND_GT, VS_COND_GE,
  VS_COND_IS, VS_COND_ISNOT, VS_COND_ISNULL, VS_COND_NOTNULL, VS_COND_IN
} VsCondOp;
typedef struct VsCondList VsCondList; /* conditions joined by AND */
/* Appends "column iCol (of type eType) <op> values" to *pp (created when NULL): one value, none for IS NULL /
** IS NOT NULL, the list for IN. */
int vs_cond_add(VsCondList **pp, VsColType eType, int iCol, VsCondOp eOp, sqlite3_value **apVal, int nVal);
void vs_cond_free(VsCondList *p);
/* 1 when the copy holds row iRowid and it meets every condition, else 0. */
int vs_columns_test(const VsColumns *p, const VsCondList *pList, i64 iRowid);
/* A canonical text of the conditions (columns, operators, values with their types), sqlite3_malloc'd. */
char *vs_cond_key(const VsCondList *pList);

/* One bit per label of an index state: set when the label is live and its row meets the conditions. Shared by
** reference (a search keeps it while a newer one replaces it in the table's cache). */
typedef struct VsLabelBits {
  int nRef;
  char *zKey;           /* vs_cond_key of the conditions */
  uint64_t iStamp;      /* VsIndex.iStamp it was built for */
  i64 iGen, iLogSeq;    /* the columns' state it was built from */
  i64 nLabel;
  uint64_t aBit[1];     /* (nLabel + 63) / 64 words */
} VsLabelBits;
/* Builds the bits of labels 0..nLabel-1 (aRowid: label -> rowid, VS_TOMBSTONE for none); takes zKey. */
int vs_label_bits_build(const VsColumns *pCols, const VsCondList *pList, const i64 *aRowid, i64 nLabel, char *zKey,
                        VsLabelBits **pp);
void vs_label_bits_unref(VsLabelBits *p);
/* The state (generation, log position) a copy reflects. */
void vs_columns_state(const VsColumns *p, i64 *piGen, i64 *piLogSeq);

/**************************************************************************************************
** sync.c: keeps a connection's Faiss index a faithful cache of the shadow tables.
**
** pIdx reflects the committed state (snapshot generation iGen plus log entries up to iLogSeq). The open
** transaction's changes sit in `pending` until xSync applies them, writes their log entries (or a new
** snapshot) and xCommit keeps the result; on rollback after xSync the cache is dropped and reloaded.
*/
typedef struct VsTable {
  sqlite3_vtab base;
  sqlite3 *db;
  VsConfig *pCfg;
  VsStorage *pStore;
  VsIndex *pIdx;          /* NULL until first needed, or after a failed commit */
  i64 iGen;               /* snapshot generation pIdx was loaded from */
  i64 iLogSeq;            /* last log entry applied to pIdx */
  unsigned int dataVersion;
  int bVersionKnown;
  int bInWrite;           /* between xBegin and xCommit/xRollback */
  int bApplied;           /* xSync applied pending to pIdx */
  VsPending pending;
  char *zSearchParams;    /* default search parameters in force */
  char *zIndexDesc;       /* index description in force */
  sqlite3_stmt *pEmbedStmt; /* SELECT <embedder>(?1), prepared on first use */
  VsI64Map written;       /* with declared columns: rowids the open transaction wrote (not undone by ROLLBACK TO) */
  VsColumns *pColumns;    /* the declared columns in memory, NULL until a search wants them */
  int bColumnsInWrite;    /* pColumns was brought up to date inside the open write transaction */
  VsLabelBits *pBits;     /* label bits of the conditions searched last, once they were searched twice */
  char *zLastKey;         /* vs_cond_key of the conditions of the last in-memory search */
  int bTestFilterInMemory; /* tests: every declared-column search takes the in-memory path
                           ** (environment variable VECSTORE_TEST_FILTER_IN_MEMORY at connect) */
} VsTable;

/* Makes pIdx current for a statement (no-op inside a write transaction, which holds the latest state). */
int vs_sync_read(VsTable *pTab);
/* Called by xBegin: makes pIdx current before the transaction's first change. */
int vs_sync_begin(VsTable *pTab);
/* xSync: applies pending changes, trains/rebuilds as requested, writes the log or a snapshot. */
int vs_sync_commit(VsTable *pTab);
/* xCommit / xRollback. */
void vs_sync_finish(VsTable *pTab, int bCommitted);
/* Rebuilds pIdx from the stored vectors now, writing a fresh snapshot (rebuild, optimize, recovery). */
int vs_sync_rebuild(VsTable *pTab, int bTrain, char **pzErr);
/* Drops the cache; the next statement reloads it. */
void vs_sync_invalidate(VsTable *pTab);
/* Frees the declared columns in memory and what was derived from them (label bits). */
void vs_sync_drop_columns(VsTable *pTab);
/* Records that the open transaction wrote row iRowid's document (tables with declared columns). */
int vs_sync_written(VsTable *pTab, i64 iRowid);
/* The declared columns in memory, up to date with the committed state (after vs_sync_read); rows the open
** transaction wrote (pTab->written) must be checked with SQL. */
int vs_sync_columns(VsTable *pTab, VsColumns **pp);
/* xRollbackTo: undoes pending changes and commands since savepoint iLevel, re-reads the options. */
int vs_sync_rollback_to(VsTable *pTab, int iLevel);

/**************************************************************************************************
** search.c: a stream of rows in increasing distance from a query vector, across the committed index (in
** batches that double in size when used up), the transaction's pending vectors, and finally an exact scan.
*/
typedef struct VsSearch VsSearch;

/* aQuery has the table's dimension. zParams: per-query Faiss parameters or NULL. xFilter (NULL for none) keeps
** committed rows the transaction has not touched, inside the index search (the transaction's own vectors are
** not filtered). */
/* pBits (NULL for none; a reference is taken) is the same filter as label bits: index batches use them instead of
** xFilter while the index is in the state they were built for and the transaction has no changes. */
int vs_search_start(VsTable *pTab, const float *aQuery, i64 nFirstBatch, const char *zParams,
                    int (*xFilter)(void *, i64), void *pFilterCtx, VsLabelBits *pBits, VsSearch **pp);
/* Searches only the rows aRowid[0..n) (distinct), exactly. */
int vs_search_start_among(VsTable *pTab, const float *aQuery, const i64 *aRowid, i64 nRowid, VsSearch **pp);
/* A stream of the given rows in the given order (MMR picks), with the given distances. */
int vs_search_from_list(VsTable *pTab, const i64 *aRowid, const double *aDist, i64 n, VsSearch **pp);
/* The next row; *pbEof set when there is none. */
int vs_search_next(VsSearch *p, i64 *piRowid, double *prDist, int *pbEof);
void vs_search_free(VsSearch *p);

/**************************************************************************************************
** plan.c: xBestIndex and the plan encoding (documented there).
*/
/* Column kinds. Columns are id, content, metadata, embedding, the declared columns, then the hidden ones. */
enum {
  VS_KIND_ROWID = -1,
  VS_KIND_ID = 0,
  VS_KIND_CONTENT,
  VS_KIND_METADATA,
  VS_KIND_EMBEDDING,
  VS_KIND_DISTANCE,
  VS_KIND_SCORE,
  VS_KIND_K,
  VS_KIND_FETCH_K,
  VS_KIND_LAMBDA,
  VS_KIND_PARAMS,
  VS_KIND_TABLE,
  VS_KIND_COUNT,
  VS_KIND_DECLARED = VS_KIND_COUNT
};
#define VS_PLAN_SCAN 0
#define VS_PLAN_ROWID 1
#define VS_PLAN_ID 2
#define VS_PLAN_KNN 3

/* The kind of column number iCol (-1 for the rowid); *piDecl gets a declared column's index. */
int vs_col_kind(const VsTable *pTab, int iCol, int *piDecl);
/* xBestIndex. A MATCH on a column other than embedding and the table's own column fails the statement (pVtab->zErrMsg
** says which columns take MATCH); a plan where the MATCH is not usable is refused with SQLITE_CONSTRAINT. */
int vs_best_index(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo);
/* xFindFunction: claims the two-argument "match" on the table's columns, so that a MATCH xBestIndex did not consume
** (inside OR or NOT, say) fails with a vecstore error saying where MATCH goes instead of SQLite's generic one.
** Returns 1 and sets *pxFunc and *ppArg (pVtab) for it, 0 for every other function. */
int vs_find_function(sqlite3_vtab *pVtab, int nArg, const char *zName,
                     void (**pxFunc)(sqlite3_context *, int, sqlite3_value **), void **ppArg);

/**************************************************************************************************
** cursor.c: xOpen, xFilter, xNext, xEof, xColumn, xRowid, xClose.
*/
int vs_cursor_open(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor);
int vs_cursor_close(sqlite3_vtab_cursor *pCursor);
int vs_cursor_filter(sqlite3_vtab_cursor *pCursor, int idxNum, const char *idxStr, int argc, sqlite3_value **argv);
int vs_cursor_next(sqlite3_vtab_cursor *pCursor);
int vs_cursor_eof(sqlite3_vtab_cursor *pCursor);
int vs_cursor_column(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx, int iCol);
int vs_cursor_rowid(sqlite3_vtab_cursor *pCursor, sqlite_int64 *pRowid);

/**************************************************************************************************
** write.c: xUpdate (INSERT, UPDATE, DELETE and INSERT OR REPLACE/IGNORE) for vtab.c.
*/
#define VS_COL_ID 0
#define VS_COL_CONTENT 1
#define VS_COL_METADATA 2
#define VS_COL_EMBEDDING 3
#define VS_COL_TABLE 10 /* plus the number of declared columns, which come after embedding */
int vs_write(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid);

/* embed.c (continued): embeds text with the table's embedder (built-in hash, or the SQL function named by
** embedder=) into a new sqlite3_malloc'd vector of the table's dimension, validated like any vector. */
int vs_embed_text(VsTable *pTab, sqlite3_value *pText, float **paVec, char **pzErr);

/**************************************************************************************************
** command.c: INSERT INTO t(t) VALUES ('optimize' | 'rebuild' | 'train' | 'integrity-check' | 'index=...' |
** 'search_params=...').
*/
int vs_command(VsTable *pTab, sqlite3_value *pCommand);

/**************************************************************************************************
** mmr.c: maximal marginal relevance (LangChain's algorithm).
*/
/* Picks up to k of the n candidates aVec (n x nDim, in candidate order) for aQuery; aPick receives candidate
** indexes in pick order, *pnPick their count. rLambda: 1 = relevance only, 0 = diversity only. */
int vs_mmr_select(const float *aQuery, const float *aVec, int n, int nDim, int k, double rLambda, int *aPick,
                  int *pnPick);

/**************************************************************************************************
** vtab.c: the module.
*/
int vs_vtab_register(sqlite3 *db);

#endif /* VECSTORE_INT_H */
