-- The LangChain FAISS notebook (langchain docs, integrations/vectorstores/faiss), step by step in SQL: load a
-- text, split it, embed it, search with distances and relevance scores, filter by metadata, MMR, delete, merge
-- two stores, save to a file and load it again. Every step prints the LangChain call it mirrors and what to look
-- for in the table below it.
-- Run it with `make demo`, from the repository root (the paths below are relative to it). It is also a golden
-- test (sql/walkthrough.expected, tests/golden.sh): its output must stay deterministic.
-- .bail on: the first error (a missing input file, a failed integrity check) stops the script with a non-zero
-- exit status, so `make demo` fails instead of showing an empty store.
.bail on
.load ./build/vecstore
.shell rm -f build/demo-other.db build/demo-copy.db
.headers on
.mode box --wrap 80 --wordwrap on

.print "vecstore walkthrough: the LangChain FAISS notebook in SQL"
.print "=========================================================="
.print
.print "Step 1. Load the document, split it into chunks, embed and store them"
.print "  LangChain:  documents = TextLoader('state_of_the_union.txt').load()"
.print "              docs = CharacterTextSplitter(chunk_size=1000, chunk_overlap=0).split_documents(documents)"
.print "              db = FAISS.from_documents(docs, embeddings); print(db.index.ntotal)"
.print "  SQL:        readfile() + vecstore_split(text, 1000, 0) inserted into a vecstore table whose built-in"
.print "              'hash' embedder embeds each chunk (an application names its own embedding function)."
.print "  Look for:   42 chunks, as in the notebook."

-- The input must be there: readfile() of a missing file is NULL (and vecstore_split(NULL, ...) yields no rows,
-- as SQLite's json_each(NULL) does), which would make an empty demo. The named CHECK makes it an error that
-- names the file.
CREATE TEMP TABLE input(
  file TEXT,
  text BLOB CONSTRAINT "cannot read tests/data/state_of_the_union.txt (missing or empty; run make demo from the repository root of a complete clone)"
    CHECK (text IS NOT NULL AND length(text) > 0)
);
INSERT INTO temp.input VALUES ('tests/data/state_of_the_union.txt', readfile('tests/data/state_of_the_union.txt'));

CREATE VIRTUAL TABLE sotu USING vecstore(dim = 512, metric = cosine, embedder = hash);
INSERT INTO sotu(id, content, metadata)
  SELECT 'sotu-' || chunk_index, chunk, json_object('source', 'state_of_the_union.txt', 'chunk', chunk_index)
    FROM vecstore_split((SELECT text FROM temp.input), 1000, 0);
SELECT file, length(text) AS bytes_read, (SELECT count(*) FROM sotu) AS chunks_in_store FROM temp.input;

.print
.print "Step 2. similarity_search: the 4 chunks nearest to a question"
.print "  LangChain:  query = 'What did the president say about Ketanji Brown Jackson'"
.print "              docs = db.similarity_search(query)          # k = 4, nearest first"
.print "  SQL:        WHERE sotu MATCH query AND k = 4"
.print "  Look for:   sotu-31 first: the passage on the Supreme Court nomination."
SELECT id, json_extract(metadata, '$.chunk') AS chunk_index,
       substr(replace(content, char(10), ' '), 1, 60) || '...' AS opening_words
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND k = 4;

.print
.print "  print(docs[0].page_content): the nearest chunk, in full"
.print "  ------------------------------------------------------------------------------------------------------"
.headers off
.mode list
SELECT content FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND k = 1;
.headers on
.mode box --wrap 80 --wordwrap on
.print "  ------------------------------------------------------------------------------------------------------"

.print
.print "Step 3. similarity_search_with_score and similarity_search_by_vector"
.print "  LangChain:  db.similarity_search_with_score(query)        # (document, distance): lower is closer"
.print "              db.similarity_search_by_vector(embeddings.embed_query(query))"
.print "  SQL:        the hidden columns distance and score (score = 1 - cosine distance, the relevance score);"
.print "              by vector: WHERE embedding MATCH vecstore_embed_hash(query, 512)"
.print "  Look for:   the same 4 chunks in the same order both ways. The lexical 'hash' embedder gives low"
.print "              absolute scores; a neural embedding model would give higher ones."
SELECT id, round(distance, 4) AS cosine_distance, round(score, 4) AS relevance_score
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND k = 4;
SELECT id AS id_by_vector, round(distance, 4) AS cosine_distance
  FROM sotu WHERE embedding MATCH vecstore_embed_hash('What did the president say about Ketanji Brown Jackson', 512)
   AND k = 4;

.print
.print "Step 4. similarity_search_with_relevance_scores with a score threshold"
.print "  LangChain:  db.similarity_search_with_relevance_scores(query, k=4, score_threshold=0.1)"
.print "  SQL:        AND score >= 0.1 AND k = 4"
.print "  Look for:   only the 2 of the 4 nearest chunks whose relevance score reaches 0.1."
SELECT id, round(score, 4) AS relevance_score
  FROM sotu WHERE sotu MATCH 'What did the president say about Ketanji Brown Jackson' AND score >= 0.1 AND k = 4;

.print
.print "Step 5. Similarity search with a metadata filter (LangChain's filter language), with and without fetch_k"
.print "  LangChain:  db.similarity_search('inflation and prices', k=2, filter={'chunk': {'$gte': 30}})"
.print "  SQL:        AND vecstore_filter(metadata, '{\"chunk\": {\"$gte\": 30}}') LIMIT 2"
.print "  Look for:   the 2 nearest chunks among those numbered 30 and above."
SELECT id, json_extract(metadata, '$.chunk') AS chunk_index, round(distance, 4) AS cosine_distance
  FROM sotu WHERE sotu MATCH 'inflation and prices' AND vecstore_filter(metadata, '{"chunk": {"$gte": 30}}') LIMIT 2;
.print
.print "  LangChain:  db.similarity_search('inflation and prices', filter={'chunk': {'$lt': 20}}, fetch_k=3)"
.print "  SQL:        AND fetch_k = 3 AND vecstore_filter(metadata, '{\"chunk\": {\"$lt\": 20}}')"
.print "  Look for:   0 matches: like LangChain, the filter is applied to the 3 nearest chunks only (sotu-30,"
.print "              sotu-21 and sotu-31, Step 6), and none of them is numbered below 20."
SELECT count(*) AS matches_among_3_nearest FROM sotu
 WHERE sotu MATCH 'inflation and prices' AND fetch_k = 3 AND vecstore_filter(metadata, '{"chunk": {"$lt": 20}}');
.print
.print "  LangChain:  db.similarity_search('inflation and prices', k=3, filter={'chunk': {'$lt': 20}}, fetch_k=42)"
.print "  SQL:        no fetch_k, LIMIT 3: vecstore searches further until 3 chunks match"
.print "  Look for:   the 3 nearest chunks numbered below 20."
SELECT id, json_extract(metadata, '$.chunk') AS chunk_index, round(distance, 4) AS cosine_distance FROM sotu
 WHERE sotu MATCH 'inflation and prices' AND vecstore_filter(metadata, '{"chunk": {"$lt": 20}}') LIMIT 3;

.print
.print "Step 6. max_marginal_relevance_search: relevant but not redundant"
.print "  LangChain:  db.similarity_search('inflation and prices', k=4)                          # plain, first"
.print "              db.max_marginal_relevance_search('inflation and prices', k=4, fetch_k=10, lambda_mult=0.25)"
.print "  SQL:        AND k = 4 AND fetch_k = 10 AND lambda_mult = 0.25"
.print "  Look for:   MMR keeps the nearest chunk, then picks chunks unlike the ones already picked, in pick order"
.print "              (so its distances are not in increasing order); the plain search takes the 4 nearest."
SELECT id AS plain_top_4, round(distance, 4) AS cosine_distance
  FROM sotu WHERE sotu MATCH 'inflation and prices' AND k = 4;
SELECT id AS mmr_pick, round(distance, 4) AS cosine_distance
  FROM sotu WHERE sotu MATCH 'inflation and prices' AND k = 4 AND fetch_k = 10 AND lambda_mult = 0.25;

.print
.print "Step 7. delete by ids, then get_by_ids"
.print "  LangChain:  db.delete(['sotu-0', 'sotu-1']); db.index.ntotal"
.print "              db.get_by_ids(['sotu-0', 'sotu-2', 'sotu-3'])"
.print "  SQL:        DELETE FROM sotu WHERE id IN (...); SELECT ... WHERE id IN (...)"
.print "  Look for:   40 chunks left; sotu-0 is gone, so only sotu-2 and sotu-3 come back."
DELETE FROM sotu WHERE id IN ('sotu-0', 'sotu-1');
SELECT count(*) AS chunks_after_delete FROM sotu;
SELECT id, json_extract(metadata, '$.chunk') AS chunk_index,
       substr(replace(content, char(10), ' '), 1, 60) || '...' AS opening_words
  FROM sotu WHERE id IN ('sotu-0', 'sotu-2', 'sotu-3') ORDER BY id;

.print
.print "Step 8. merge_from: a second store, in another database file, merged into the first"
.print "  LangChain:  db2 = FAISS.from_texts([...], embeddings, ids=['note-1', 'note-2']); db.merge_from(db2)"
.print "  SQL:        ATTACH the other file; INSERT INTO sotu ... SELECT ... FROM other.notes (one statement: an"
.print "              id present in both stores would abort it and change nothing)"
.print "  Look for:   42 rows again (40 + 2 notes); note-1 now ranks first for a question about the nomination."
ATTACH 'build/demo-other.db' AS other;
CREATE VIRTUAL TABLE other.notes USING vecstore(dim = 512, metric = cosine, embedder = hash);
INSERT INTO other.notes(id, content) VALUES
  ('note-1', 'The president nominated Judge Ketanji Brown Jackson to the Supreme Court.'),
  ('note-2', 'Inflation is the top economic concern of American families.');
INSERT INTO sotu(id, content, metadata, embedding)
  SELECT id, content, json_object('source', 'notes'), embedding FROM other.notes;
DETACH other;
SELECT count(*) AS rows_after_merge, sum(json_extract(metadata, '$.source') = 'notes') AS from_other_store FROM sotu;
SELECT id, json_extract(metadata, '$.source') AS source, round(score, 4) AS relevance_score
  FROM sotu WHERE sotu MATCH 'Ketanji Brown Jackson Supreme Court' AND k = 3;

.print
.print "Step 9. save_local / load_local: the store is the database file"
.print "  LangChain:  db.save_local('faiss_index'); new_db = FAISS.load_local('faiss_index', embeddings)"
.print "  SQL:        integrity-check (an error if the index, its snapshot and the rows disagree), then"
.print "              VACUUM INTO 'build/demo-copy.db'; .open the copy, .load the extension, search it"
.print "  Look for:   the check passes, and the copy holds the same 42 rows and gives the same answers as Step 8."
INSERT INTO sotu(sotu) VALUES ('integrity-check');
-- Reached only when the check passed (.bail on stops at an error).
SELECT 'passed' AS integrity_check;
VACUUM INTO 'build/demo-copy.db';
.open build/demo-copy.db
.load ./build/vecstore
SELECT count(*) AS rows_in_copy FROM sotu;
SELECT id, json_extract(metadata, '$.source') AS source, round(score, 4) AS relevance_score
  FROM sotu WHERE sotu MATCH 'Ketanji Brown Jackson Supreme Court' AND k = 3;
