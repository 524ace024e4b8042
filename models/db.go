package models

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"ttconsole/migrations"
)

// DB is the product's database. On SQLite all writes go through one
// connection whose transactions start IMMEDIATE, so writers queue on the
// Go side instead of failing with SQLITE_BUSY; reads use a pool. On
// PostgreSQL both are the same pool.
type DB struct {
	w        *gorm.DB // writes and read-modify-write transactions
	r        *gorm.DB // plain reads
	Postgres bool

	stopCheckpoints func()   // SQLite: ends the background checkpointer
	beforeClose     []func() // SQLite: the group commits' statements to finalize
}

// Open connects to PostgreSQL when databaseURL is set, otherwise to the
// SQLite file at path (created when missing).
func Open(path, databaseURL string) (*DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	if databaseURL != "" {
		g, err := gorm.Open(postgres.Open(databaseURL), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := g.DB()
		if err != nil {
			return nil, err
		}
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return &DB{w: g, r: g, Postgres: true}, nil
	}

	w, err := openSQLite(path, cfg, writerCacheKiB, "_txlock=immediate")
	if err != nil {
		return nil, err
	}
	wsql, _ := w.DB()
	wsql.SetMaxOpenConns(1)
	wsql.SetMaxIdleConns(1)
	wsql.SetConnMaxLifetime(0)

	r, err := openSQLite(path, cfg, readerCacheKiB, "_query_only=1")
	if err != nil {
		wsql.Close()
		return nil, err
	}
	rsql, _ := r.DB()
	n := max(4, runtime.NumCPU()*2)
	rsql.SetMaxOpenConns(n)
	rsql.SetMaxIdleConns(n)

	db := &DB{w: w, r: r}
	if err := db.startCheckpoints(path, cfg); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkpointEvery is how often the background checkpointer copies the
// write-ahead log into the database file.
const checkpointEvery = 100 * time.Millisecond

// startCheckpoints moves SQLite's WAL checkpoints off the write path. By
// default the commit that takes the log past 1000 pages copies them into
// the database file and waits for the disk, twice, while every other
// write queues behind it. Here the writer never checkpoints; a connection
// of its own does, a few times a second, without blocking writers
// (PASSIVE), and each copy is small because a page written many times in
// between is copied once. Should the checkpointer fall behind, the writer
// still checkpoints once the log passes 20,000 pages (80 MiB).
func (db *DB) startCheckpoints(path string, cfg *gorm.Config) error {
	if _, err := db.sqlDB().Exec("PRAGMA wal_autocheckpoint = 20000; PRAGMA temp_store = MEMORY"); err != nil {
		return err
	}
	cp, err := openSQLite(path, cfg, checkpointCacheKiB, "")
	if err != nil {
		return err
	}
	cpsql, _ := cp.DB()
	cpsql.SetMaxOpenConns(1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cpsql.Close()
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed checkpoint is retried on the next tick, and the
				// writer's own limit is the backstop.
				cpsql.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	db.stopCheckpoints = func() {
		close(stop)
		<-done
	}
	return nil
}

// Page cache per connection: the writer keeps the hot pages of every
// table it appends to; a reader mostly walks an index once (a page, an
// export), where the operating system's file cache serves as well, so
// several readers stay small together.
const (
	writerCacheKiB     = 32 << 10
	readerCacheKiB     = 8 << 10
	checkpointCacheKiB = 1 << 10
)

func openSQLite(path string, cfg *gorm.Config, cacheKiB int, extra string) (*gorm.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_cache_size", strconv.Itoa(-cacheKiB))
	dsn := "file:" + path + "?" + q.Encode() + "&" + extra
	g, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Ping so a bad path fails here, not on the first request.
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	if err := sqlDB.Ping(); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return g, nil
}

// Close closes every connection.
func (db *DB) Close() error {
	for _, fn := range db.beforeClose {
		fn()
	}
	db.beforeClose = nil
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
		db.stopCheckpoints = nil
	}
	var first error
	for _, g := range []*gorm.DB{db.w, db.r} {
		sqlDB, err := g.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		if err != nil && first == nil && !strings.Contains(err.Error(), "closed") {
			first = err
		}
		if db.w == db.r {
			break
		}
	}
	return first
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	for _, g := range []*gorm.DB{db.w, db.r} {
		sqlDB, err := g.DB()
		if err != nil {
			return err
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Migrate applies every pending migration and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	sqlDB, err := db.w.DB()
	if err != nil {
		return 0, err
	}
	dialect := goose.DialectSQLite3
	if db.Postgres {
		dialect = goose.DialectPostgres
	}
	opts := []goose.ProviderOption{goose.WithGoMigrations(migrations.Go(db.Postgres)...)}
	if db.Postgres {
		// Instances starting together take turns instead of racing.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return 0, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	if !db.Postgres {
		// SQLite's writer keeps temporary data in memory (see
		// startCheckpoints); a migration's, such as the statement journal
		// of copying a table of ten million requests, would be gigabytes,
		// so it goes to temporary files while migrations run. The writer
		// is one connection, the one the migrations run on.
		var tempStore int
		if err := sqlDB.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&tempStore); err != nil {
			return 0, err
		}
		if _, err := sqlDB.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
			return 0, err
		}
		defer sqlDB.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = "+strconv.Itoa(tempStore))
	}
	p, err := goose.NewProvider(dialect, sqlDB, migrations.FS, opts...)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return len(res), nil
}

// sqlDB returns the writer's *sql.DB, for the statements written for the plain driver.
func (db *DB) sqlDB() *sql.DB {
	s, _ := db.w.DB()
	return s
}

// Version names the database engine and its version, as in "PostgreSQL
// 17.2" or "SQLite 3.49.1".
func (db *DB) Version(ctx context.Context) (string, error) {
	q, engine := "SELECT sqlite_version()", "SQLite "
	if db.Postgres {
		q, engine = "SHOW server_version", "PostgreSQL "
	}
	var v string
	if err := db.sqlDB().QueryRowContext(ctx, q).Scan(&v); err != nil {
		return "", err
	}
	return engine + v, nil
}
