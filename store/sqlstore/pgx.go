package sqlstore

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgxConfig parses a PostgreSQL connection string. Its error never repeats
// the string, which may hold a password.
func pgxConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: the PostgreSQL connection string does not parse")
	}
	return cfg, nil
}
