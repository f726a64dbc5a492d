-- one audited UPDATE of one row per transaction, on a table pre-filled with ids 1..10000
\set id random(1, 10000)
UPDATE :tbl SET amount = amount + 1, note = 'bench note updated' WHERE id = :id;
