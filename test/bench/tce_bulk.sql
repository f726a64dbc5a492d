-- One-statement bulk INSERT ... SELECT of :rows tokens into :"tbl" (psql variables).
INSERT INTO :"tbl" (user_id, refresh_token)
	SELECT g, left(repeat(md5(random()::text), 7), 200)
	  FROM generate_series(1, :rows) AS g;
