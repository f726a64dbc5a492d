-- Read every row of :"rel" and force the value of refresh_token to be computed
-- (sum(length(...)) needs the decrypted text of each row; count(*) alone would not).
-- The one-row result is discarded so that only the server's work is timed.
SELECT sum(length(refresh_token)) FROM :"rel" \g /dev/null
