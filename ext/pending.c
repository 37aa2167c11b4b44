/*
** pending.c: the vectors an open transaction has set or deleted, not yet in the committed Faiss index.
**
** Ops are appended in order; `last` maps each rowid to its latest op and every op links to the previous op of
** the same rowid, so rolling back to a savepoint (a position in the op list) undoes ops newest first in
** O(ops undone). Searches inside the transaction skip committed rows the transaction touched and scan the
** latest vectors here exactly (search.c).
*/
#include "vecstore_int.h"

void vs_pending_init(VsPending *p, int nDim) {
  memset(p, 0, sizeof(*p));
  p->nDim = nDim;
  vs_i64map_init(&p->last);
}

void vs_pending_clear(VsPending *p) {
  for (i64 i = 0; i < p->nOp; i++) sqlite3_free(p->aOp[i].aVec);
  sqlite3_free(p->aOp);
  sqlite3_free(p->aSave);
  vs_i64map_clear(&p->last);
  int nDim = p->nDim;
  vs_pending_init(p, nDim);
}

int vs_pending_is_empty(const VsPending *p) { return p->last.nUsed == 0; }

int vs_pending_put(VsPending *p, i64 iRowid, const float *aVec) {
  if (p->nOp == p->nAlloc) {
    i64 nNew = p->nAlloc ? p->nAlloc * 2 : 64;
    VsPendingOp *aNew = sqlite3_realloc64(p->aOp, (sqlite3_uint64)nNew * sizeof(VsPendingOp));
    if (aNew == 0) return SQLITE_NOMEM;
    p->aOp = aNew;
    p->nAlloc = nNew;
  }
  VsPendingOp *pOp = &p->aOp[p->nOp];
  pOp->iRowid = iRowid;
  pOp->aVec = 0;
  pOp->eCmd = 0;
  if (aVec) {
    pOp->aVec = sqlite3_malloc64((sqlite3_uint64)p->nDim * sizeof(float));
    if (pOp->aVec == 0) return SQLITE_NOMEM;
    memcpy(pOp->aVec, aVec, (size_t)p->nDim * sizeof(float));
  }
  if (!vs_i64map_get(&p->last, iRowid, &pOp->iPrev)) pOp->iPrev = -1;
  if (vs_i64map_put(&p->last, iRowid, p->nOp) != SQLITE_OK) {
    sqlite3_free(pOp->aVec);
    return SQLITE_NOMEM;
  }
  p->nOp++;
  return SQLITE_OK;
}

const VsPendingOp *vs_pending_get(const VsPending *p, i64 iRowid) {
  i64 iOp;
  if (p->nOp == 0 || !vs_i64map_get(&p->last, iRowid, &iOp)) return 0;
  return &p->aOp[iOp];
}

/* Undoes ops from the newest down to position nKeep. */
static void truncate_ops(VsPending *p, i64 nKeep) {
  while (p->nOp > nKeep) {
    VsPendingOp *pOp = &p->aOp[--p->nOp];
    if (pOp->eCmd) continue;
    if (pOp->iPrev >= 0) {
      vs_i64map_put(&p->last, pOp->iRowid, pOp->iPrev); /* the slot exists: no allocation */
    } else {
      vs_i64map_remove(&p->last, pOp->iRowid);
    }
    sqlite3_free(pOp->aVec);
    pOp->aVec = 0;
  }
}

int vs_pending_command(VsPending *p, int eCmd) {
  if (p->nOp == p->nAlloc) {
    i64 nNew = p->nAlloc ? p->nAlloc * 2 : 64;
    VsPendingOp *aNew = sqlite3_realloc64(p->aOp, (sqlite3_uint64)nNew * sizeof(VsPendingOp));
    if (aNew == 0) return SQLITE_NOMEM;
    p->aOp = aNew;
    p->nAlloc = nNew;
  }
  VsPendingOp *pOp = &p->aOp[p->nOp++];
  memset(pOp, 0, sizeof(*pOp));
  pOp->iPrev = -1;
  pOp->eCmd = eCmd;
  return SQLITE_OK;
}

int vs_pending_commands(const VsPending *p) {
  int eCmd = 0;
  for (i64 i = 0; i < p->nOp; i++) eCmd |= p->aOp[i].eCmd;
  return eCmd;
}

/* Savepoint levels the table joined late (or skipped) start at the current position. */
int vs_pending_savepoint(VsPending *p, int iLevel) {
  if (iLevel < 0) return SQLITE_OK;
  if (iLevel >= p->nSaveAlloc) {
    int nNew = iLevel + 8;
    i64 *aNew = sqlite3_realloc64(p->aSave, (sqlite3_uint64)nNew * sizeof(i64));
    if (aNew == 0) return SQLITE_NOMEM;
    p->aSave = aNew;
    p->nSaveAlloc = nNew;
  }
  for (int i = p->nSave; i <= iLevel; i++) p->aSave[i] = p->nOp;
  if (p->nSave <= iLevel) p->nSave = iLevel + 1;
  p->aSave[iLevel] = p->nOp;
  p->nSave = iLevel + 1;
  return SQLITE_OK;
}

/* ROLLBACK TO level iLevel: ops since it began are undone; the savepoint itself stays open. Every level is recorded
** (the ones open when the table joined too: SQLite reports the newest at xBegin), except one whose xSavepoint ran
** out of memory. SQLite still rolls back to that one (the statement savepoint of a statement that then failed): it
** began at the current position, so nothing goes. */
void vs_pending_rollback_to(VsPending *p, int iLevel) {
  i64 nKeep = (iLevel >= 0 && iLevel < p->nSave) ? p->aSave[iLevel] : 0;
  if (iLevel >= p->nSave) nKeep = p->nOp; /* a level not recorded: opened after our last change */
  truncate_ops(p, nKeep);
  if (iLevel >= 0 && iLevel < p->nSave) p->nSave = iLevel + 1;
}

void vs_pending_forget(VsPending *p) {
  int nSave = p->nSave;
  i64 *aSave = p->aSave;
  int nSaveAlloc = p->nSaveAlloc;
  p->aSave = 0;
  vs_pending_clear(p);
  p->aSave = aSave;
  p->nSaveAlloc = nSaveAlloc;
  p->nSave = nSave;
  for (int i = 0; i < nSave; i++) aSave[i] = 0;
}

void vs_pending_release(VsPending *p, int iLevel) {
  if (iLevel >= 0 && iLevel < p->nSave) p->nSave = iLevel;
}
