-- The next number of a counter that a restored Redis never repeats (prelude's next_number).
-- KEYS[1] the counter; ARGV[1] its numbers a millisecond (ledger/numbers.py)
return next_number(KEYS[1], tonumber(ARGV[1]))
