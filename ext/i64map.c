/*
** vecstore: open-addressing hash map from int64 keys to int64 values.
**
** Linear probing over a power-of-two table. Removed entries become tombstones (aUsed 2) so probe chains
** stay intact; the table is rebuilt (dropping tombstones, growing or shrinking) whenever live + deleted
** slots would exceed half of it, and sized so that the live entries then fill at most a quarter of it.
** aKey, aVal and aUsed are carved from one sqlite3_malloc64 block that starts at aKey.
*/
#include "vecstore_int.h"

#define I64MAP_MIN_SLOT 16

/* Slot where the probe for iKey starts (splitmix64 finaliser, so sequential rowids spread out). */
static i64 slot_of(i64 iKey, i64 nSlot) {
  uint64_t x = (uint64_t)iKey;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return (i64)(x & (uint64_t)(nSlot - 1));
}

void vs_i64map_init(VsI64Map *p) { memset(p, 0, sizeof(*p)); }

/* Frees the table; p is then an empty, usable map. */
void vs_i64map_clear(VsI64Map *p) {
  sqlite3_free(p->aKey);
  vs_i64map_init(p);
}

void vs_i64map_prefetch(const VsI64Map *p, i64 iKey) {
  if (p->nSlot == 0) return;
  i64 i = slot_of(iKey, p->nSlot);
  __builtin_prefetch(&p->aUsed[i]);
  __builtin_prefetch(&p->aKey[i]);
  __builtin_prefetch(&p->aVal[i]);
}

/* Index of the slot holding iKey, or -1. */
static i64 find_slot(const VsI64Map *p, i64 iKey) {
  if (p->nSlot == 0) return -1;
  i64 mask = p->nSlot - 1;
  for (i64 i = slot_of(iKey, p->nSlot);; i = (i + 1) & mask) {
    if (p->aUsed[i] == 0) return -1;
    if (p->aUsed[i] == 1 && p->aKey[i] == iKey) return i;
  }
}

/* Rebuilds the table with room for nWant entries (at least nUsed + 1) at <= 25% load, without tombstones.
** SQLITE_NOMEM leaves the map unchanged. */
static int rebuild(VsI64Map *p, i64 nWant) {
  i64 nSlot = I64MAP_MIN_SLOT;
  if (nWant < p->nUsed + 1) nWant = p->nUsed + 1;
  while (nSlot < nWant * 4) nSlot *= 2;
  unsigned char *pBlock = sqlite3_malloc64((sqlite3_uint64)nSlot * (2 * sizeof(i64) + 1));
  if (pBlock == 0) return SQLITE_NOMEM;
  i64 *aKey = (i64 *)pBlock;
  i64 *aVal = aKey + nSlot;
  unsigned char *aUsed = (unsigned char *)(aVal + nSlot);
  memset(aUsed, 0, (size_t)nSlot);
  i64 mask = nSlot - 1;
  for (i64 j = 0; j < p->nSlot; j++) {
    if (p->aUsed[j] != 1) continue;
    i64 i = slot_of(p->aKey[j], nSlot);
    while (aUsed[i]) i = (i + 1) & mask;
    aUsed[i] = 1;
    aKey[i] = p->aKey[j];
    aVal[i] = p->aVal[j];
  }
  sqlite3_free(p->aKey);
  p->aKey = aKey;
  p->aVal = aVal;
  p->aUsed = aUsed;
  p->nSlot = nSlot;
  p->nFill = p->nUsed;
  return SQLITE_OK;
}

int vs_i64map_reserve(VsI64Map *p, i64 nEntry) {
  if ((nEntry + 1) * 2 <= p->nSlot) return SQLITE_OK;
  return rebuild(p, nEntry + 1);
}

/* Sets the value of iKey (inserting it or replacing its value). SQLITE_OK or SQLITE_NOMEM (map unchanged). */
int vs_i64map_put(VsI64Map *p, i64 iKey, i64 iVal) {
  i64 iTomb = -1;
  if (p->nSlot > 0) {
    i64 mask = p->nSlot - 1;
    for (i64 i = slot_of(iKey, p->nSlot);; i = (i + 1) & mask) {
      if (p->aUsed[i] == 0) break;
      if (p->aUsed[i] == 2) {
        if (iTomb < 0) iTomb = i;
      } else if (p->aKey[i] == iKey) {
        p->aVal[i] = iVal;
        return SQLITE_OK;
      }
    }
  }
  if (iTomb >= 0) {
    /* Reusing a tombstone does not change the fill. */
    p->aUsed[iTomb] = 1;
    p->aKey[iTomb] = iKey;
    p->aVal[iTomb] = iVal;
    p->nUsed++;
    return SQLITE_OK;
  }
  if ((p->nFill + 1) * 2 > p->nSlot) {
    int rc = rebuild(p, p->nUsed + 1);
    if (rc != SQLITE_OK) return rc;
  }
  i64 mask = p->nSlot - 1;
  i64 i = slot_of(iKey, p->nSlot);
  while (p->aUsed[i]) i = (i + 1) & mask;
  p->aUsed[i] = 1;
  p->aKey[i] = iKey;
  p->aVal[i] = iVal;
  p->nUsed++;
  p->nFill++;
  return SQLITE_OK;
}

/* 1 and *piVal (when piVal is not NULL) if iKey is in the map, else 0. */
int vs_i64map_get(const VsI64Map *p, i64 iKey, i64 *piVal) {
  i64 i = find_slot(p, iKey);
  if (i < 0) return 0;
  if (piVal) *piVal = p->aVal[i];
  return 1;
}

/* Removes iKey; 1 if it was there. Emptying the map clears every tombstone at once. */
int vs_i64map_remove(VsI64Map *p, i64 iKey) {
  i64 i = find_slot(p, iKey);
  if (i < 0) return 0;
  p->aUsed[i] = 2;
  p->nUsed--;
  if (p->nUsed == 0) {
    memset(p->aUsed, 0, (size_t)p->nSlot);
    p->nFill = 0;
  }
  return 1;
}
