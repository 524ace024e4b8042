// Package bench measures the gateway against a bare reverse proxy to the
// same upstream (issue 4, point 8 "Speed"; issue 18, "Figures"). It holds
// benchmarks only, so plain `go test ./...` runs nothing here. The current
// figures, and the command for each, are in docs/PERFORMANCE.md.
//
// BenchmarkGateway builds the ttconsole binary, runs `ttconsole
// upstream-sim`, `ttconsole serve` (every call billed and logged) and the
// bare proxy of ./bareproxy as separate processes, and drives the same
// load through the gateway and the bare proxy in alternating turns, at
// concurrency 1 and 16. On SQLite (a fresh file):
//
//	go test ./bench -run '^$' -bench Gateway -benchtime 1x
//
// With DATABASE_URL naming a PostgreSQL server (any database on it; the
// user must be allowed to create databases), the benchmark creates a
// database of its own there with a random name (tt_bench_…), runs serve
// and the admin CLI on it, and drops it at the end (DROP DATABASE … WITH
// (FORCE)). -gw.pgsync on|off sets that database's synchronous_commit;
// without it the server's own setting holds (on, by default):
//
//	DATABASE_URL='postgres://postgres@127.0.0.1:55500/postgres?sslmode=disable' \
//	    go test ./bench -run '^$' -bench Gateway -benchtime 1x -gw.pgsync off
//	DATABASE_URL='postgres://postgres@127.0.0.1:55500/postgres?sslmode=disable' \
//	    go test ./bench -run '^$' -bench Gateway -benchtime 1x
//
// BenchmarkBusyAccount uses the same processes, without the bare proxy, on
// whichever engine DATABASE_URL selects: one account's key at concurrency
// 16 against four accounts' keys at 4 each (16 in all), in alternating
// turns, and reports the throughput ratio busy / four:
//
//	go test ./bench -run '^$' -bench BusyAccount -benchtime 1x
//	DATABASE_URL='postgres://…' go test ./bench -run '^$' -bench BusyAccount -benchtime 1x -gw.pgsync off
//
// Both fail unless every call answered 200 and the product shows each one
// charged and logged, read through its own API and store so the checks are
// the same on both engines (stack.verify): sampled calls through GET
// /v1/requests/{id}, each account's request log as its CSV export reads
// it, its balance and its key's month-to-date through GET /v1/account,
// Store.LedgerInvariant and Store.UsageInvariant. -gw.round, -gw.rounds
// and -gw.warmup set the length of a turn, the turns per target and the
// warm-up (-gw.round 1s -gw.rounds 1 for a quick look). Every server writes its log to a file, as
// deployed; -bench.logs DIR keeps those files (the default is a temporary
// directory removed at the end).
//
// BenchmarkBodies uses the same processes: one key that keeps request and
// response bodies against one that does not, at concurrency 16 each in
// alternating turns, and reports the ratio on / off (issue 23 wants 0.8 or
// more). -gw.bodies makes the keys of BenchmarkGateway and
// BenchmarkBusyAccount keep bodies:
//
//	go test ./bench -run '^$' -bench Bodies -benchtime 1x
//
// BenchmarkInProcess serves the gateway inside the test process instead,
// so `go test -cpuprofile` shows where its time goes. It, BenchmarkStreams
// and BenchmarkExport run on SQLite whatever DATABASE_URL says.
//
// BenchmarkStreams uses the same processes for the streaming targets of
// issue 5 ("Speed and footprint"): 500 concurrent streams (peak RSS, each
// stream charged on its usage, goroutines back to their baseline) and the
// time to first byte at concurrency 1 against the bare proxy:
//
//	go test ./bench -run '^$' -bench Streams -benchtime 1x
package bench
