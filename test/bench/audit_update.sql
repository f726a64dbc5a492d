-- one audited UPDATE of a random row per transaction (run.sh loads :rows rows first)
\set id random(1, :rows)
UPDATE :tbl SET amount = amount + 1, note = 'bench note ' || :id WHERE id = :id;
