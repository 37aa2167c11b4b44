-- Golden test of the core store: create, insert, search, point lookups, errors, commands.
.load ./build/vecstore
.headers on
.mode list
SELECT vecstore_version() AS version;
SELECT vecstore_to_json(vecstore_vector('[1, 2.5, -3]')) AS json;
SELECT vecstore_distance('[1,2,3]', '[4,6,8]') AS l2, vecstore_distance('[1,2,3]', '[4,6,8]', 'ip') AS ip;
SELECT vecstore_to_json(vecstore_normalize('[3, 4]')) AS unit;

CREATE VIRTUAL TABLE docs USING vecstore(dim = 4, metric = l2);
INSERT INTO docs(id, content, metadata, embedding) VALUES
  ('apple',  'Apples are red',     '{"kind": "fruit"}',     '[1, 0, 0, 0]'),
  ('banana', 'Bananas are yellow', '{"kind": "fruit"}',     '[0.9, 0.1, 0, 0]'),
  ('carrot', 'Carrots are orange', '{"kind": "vegetable"}', '[0, 1, 0, 0]'),
  ('stone',  'Stones are grey',    '{"kind": "mineral"}',   '[0, 0, 1, 1]');

-- The two nearest documents, with distance (squared L2) and relevance score.
SELECT id, content, round(distance, 4) AS distance, round(score, 4) AS score
  FROM docs WHERE embedding MATCH '[1, 0, 0, 0]' AND k = 2;
-- LIMIT works like k; ORDER BY distance is consumed.
SELECT id FROM docs WHERE embedding MATCH '[0, 0, 1, 1]' ORDER BY distance LIMIT 1;
-- Any SQL condition with LIMIT.
SELECT id FROM docs WHERE embedding MATCH '[1, 0, 0, 0]' AND json_extract(metadata, '$.kind') = 'vegetable' LIMIT 1;
-- Point lookups and scans.
SELECT rowid, id, metadata FROM docs WHERE id = 'carrot';
SELECT id FROM docs WHERE rowid = 4;
SELECT rowid, id, distance IS NULL AS no_distance FROM docs;

-- Errors change nothing.
INSERT INTO docs(id, embedding) VALUES ('short', '[1, 2, 3]');
INSERT INTO docs(id, embedding) VALUES ('apple', '[0, 0, 0, 1]');
INSERT INTO docs(id, embedding, metadata) VALUES ('meta', '[0, 0, 0, 1]', '[1, 2]');
SELECT count(*) AS rows_after_errors FROM docs;

-- Upsert, update, delete, transactions.
INSERT OR REPLACE INTO docs(id, content, embedding) VALUES ('apple', 'Green apples', '[0, 0, 0, 1]');
UPDATE docs SET embedding = '[1, 0, 0, 0]' WHERE id = 'carrot';
DELETE FROM docs WHERE id = 'stone';
BEGIN;
INSERT INTO docs(id, embedding) VALUES ('pending', '[1, 0, 0, 0.1]');
SELECT id, round(distance, 4) AS distance FROM docs WHERE embedding MATCH '[1, 0, 0, 0]' AND k = 3;
ROLLBACK;
SELECT id, round(distance, 4) AS distance FROM docs WHERE embedding MATCH '[1, 0, 0, 0]';

-- Commands.
INSERT INTO docs(docs) VALUES ('optimize');
INSERT INTO docs(docs) VALUES ('integrity-check');
INSERT INTO docs(docs) VALUES ('index=HNSW32');
INSERT INTO docs(docs) VALUES ('search_params=efSearch=64');
SELECT id FROM docs WHERE embedding MATCH '[1, 0, 0, 0]' AND k = 2;
INSERT INTO docs(docs) VALUES ('reindex');
SELECT key, value FROM docs_config WHERE key IN ('dim', 'metric', 'index', 'search_params') ORDER BY key;
