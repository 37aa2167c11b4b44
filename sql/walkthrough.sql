-- The LangChain FAISS walkthrough, in SQL: load a text, split it, embed it, search with scores, filter by
-- metadata, MMR, delete, merge two stores, save to a file and load it again.
-- Run it with `make demo` (from the repository root, in the sqlite3 shell).
.load ./build/vecstore
.headers on
.mode box --wrap 60
.shell rm -f build/demo-other.db build/demo-copy.db

-- 1. A vector store with the built-in lexical embedder (applications name their own model instead).
CREATE VIRTUAL TABLE sotu USING vecstore(dim = 512, metric = cosine, embedder = hash);

-- 2. CharacterTextSplitter(chunk_size=1000, chunk_overlap=0) on the State of the Union, one row per chunk,
--    embedded by the table's embedder as it is inserted.
INSERT INTO sotu(id, content, metadata)
  SELECT 'sotu-' || chunk_index, chunk, json_object('source', 'state_of_the_union.txt', 'chunk', chunk_index)
    FROM vecstore_split(readfile('tests/data/state_of_the_union.txt'), 1000, 0);
SELECT count(*) AS chunks FROM sotu;

-- 3. similarity_search: the Ketanji Brown Jackson passage ranks first.
SELECT id, substr(content, 1, 60) || '...' AS content
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND k = 4;

-- 4. similarity_search_with_score and with_relevance_scores (score_threshold).
SELECT id, round(distance, 4) AS distance, round(score, 4) AS score
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND k = 4;
SELECT id, round(score, 4) AS score
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND score >= 0.1;

-- 5. A metadata filter (LangChain's filter language), with fetch_k and without it.
SELECT id, json_extract(metadata, '$.chunk') AS chunk
  FROM sotu WHERE sotu MATCH 'inflation and prices' AND vecstore_filter(metadata, '{"chunk": {"$gte": 30}}') LIMIT 2;
SELECT count(*) AS with_fetch_k_3 FROM sotu
 WHERE sotu MATCH 'inflation and prices' AND fetch_k = 3 AND vecstore_filter(metadata, '{"chunk": {"$lt": 5}}');
SELECT id FROM sotu
 WHERE sotu MATCH 'inflation and prices' AND vecstore_filter(metadata, '{"chunk": {"$lt": 5}}') LIMIT 3;

-- 6. max_marginal_relevance_search: relevant but not redundant.
SELECT id, round(distance, 4) AS distance
  FROM sotu WHERE sotu MATCH 'inflation and prices' AND k = 4 AND fetch_k = 10 AND lambda_mult = 0.25;

-- 7. delete by ids, get_by_ids.
DELETE FROM sotu WHERE id IN ('sotu-0', 'sotu-1');
SELECT count(*) AS chunks_after_delete FROM sotu;
SELECT id, json_extract(metadata, '$.chunk') AS chunk FROM sotu WHERE id IN ('sotu-2', 'sotu-3');

-- 8. merge_from: a second store in another file, merged in one statement (an id conflict would abort it).
ATTACH 'build/demo-other.db' AS other;
CREATE VIRTUAL TABLE other.notes USING vecstore(dim = 512, metric = cosine, embedder = hash);
INSERT INTO other.notes(id, content) VALUES
  ('note-1', 'The president nominated Judge Ketanji Brown Jackson to the Supreme Court.'),
  ('note-2', 'Inflation is the top economic concern of American families.');
INSERT INTO sotu(id, content, metadata, embedding)
  SELECT id, content, json_object('source', 'notes'), embedding FROM other.notes;
SELECT id, round(score, 4) AS score
  FROM sotu WHERE sotu MATCH 'Ketanji Brown Jackson Supreme Court' AND k = 3;
DETACH other;

-- 9. save_local / load_local: the store is the file; VACUUM INTO writes a copy, which opens with the same answers.
INSERT INTO sotu(sotu) VALUES ('integrity-check');
VACUUM INTO 'build/demo-copy.db';
.open build/demo-copy.db
.load ./build/vecstore
SELECT id, round(score, 4) AS score
  FROM sotu WHERE sotu MATCH 'Ketanji Brown Jackson Supreme Court' AND k = 3;
