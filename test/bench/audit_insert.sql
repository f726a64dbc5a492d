-- one audited change per transaction
INSERT INTO :tbl (user_id, note, amount) VALUES ((random() * 1000)::int, 'bench note', 12.50);
