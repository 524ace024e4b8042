package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Config is everything the product reads from flags and the environment,
// read once at start-up.
type Config struct {
	Addr           string
	DBPath         string
	DatabaseURL    string
	UpstreamURL    string
	RedisURL       string
	TrustedProxies []netip.Prefix
	SessionKey     []byte // signs session cookies; generated and kept in the database when empty
	SecureCookies  bool
	LogFormat      string // json or text
}

// configFlags registers the flags shared by every subcommand that opens the
// database, with defaults taken from the environment.
func configFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.DBPath, "db", envOr("TT_DB", "./ttconsole.db"), "SQLite database file (TT_DB); ignored when DATABASE_URL is set")
	cfg.DatabaseURL = os.Getenv("DATABASE_URL")
	cfg.LogFormat = envOr("TT_LOG_FORMAT", "json")
}

// serveFlags registers the flags of the server.
func serveFlags(fs *flag.FlagSet, cfg *Config) {
	configFlags(fs, cfg)
	fs.StringVar(&cfg.Addr, "addr", envOr("TT_ADDR", ":8080"), "listen address (TT_ADDR)")
	cfg.UpstreamURL = os.Getenv("UPSTREAM_URL")
	cfg.RedisURL = os.Getenv("REDIS_URL")
}

// finish validates and completes what the flags and environment gave.
func (cfg *Config) finish() error {
	var err error
	if cfg.TrustedProxies, err = parsePrefixes(os.Getenv("TT_TRUSTED_PROXIES")); err != nil {
		return fmt.Errorf("TT_TRUSTED_PROXIES: %w", err)
	}
	if k := os.Getenv("TT_SESSION_KEY"); k != "" {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) < 32 {
			return fmt.Errorf("TT_SESSION_KEY must be at least 32 bytes, hex-encoded (64 hex characters)")
		}
		cfg.SessionKey = b
	}
	cfg.SecureCookies = os.Getenv("TT_SECURE_COOKIES") == "1" || os.Getenv("TT_SECURE_COOKIES") == "true"
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		return fmt.Errorf("TT_LOG_FORMAT must be json or text, not %q", cfg.LogFormat)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// parsePrefixes reads a comma-separated list of addresses and CIDRs.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
