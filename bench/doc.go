// Package bench measures the gateway against a bare reverse proxy to the
// same upstream (issue 4, point 8 "Speed"). It holds benchmarks only, so
// plain `go test ./...` runs nothing here; docs/PERFORMANCE.md gives the
// commands:
//
//	go test ./bench -run '^$' -bench Gateway -benchtime 1x
//
// BenchmarkGateway builds the ttconsole binary, runs `ttconsole
// upstream-sim`, `ttconsole serve` (SQLite, every call billed and logged)
// and the bare proxy of ./bareproxy as separate processes, and drives the
// same load through the gateway and the bare proxy in alternating turns.
//
// BenchmarkInProcess serves the gateway inside the test process instead,
// so `go test -cpuprofile` shows where its time goes, and counts the SQL
// statements and transactions of one call.
//
// BenchmarkStreams uses the same processes for the streaming targets of
// issue 5 ("Speed and footprint"): 500 concurrent streams (peak RSS, each
// stream charged on its usage, goroutines back to their baseline) and the
// time to first byte at concurrency 1 against the bare proxy:
//
//	go test ./bench -run '^$' -bench Streams -benchtime 1x
package bench
