module xch/bench/wsload

go 1.26
