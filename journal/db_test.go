package journal

import (
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// testDBName is the state database's name in a test's state dir.
const testDBName = "state.db"

// testDB opens (making if needed) a state database in dir, as package
// state opens the real one.
func testDB(dir string) (*bbolt.DB, error) {
	return bbolt.Open(filepath.Join(dir, testDBName), 0o600, &bbolt.Options{Timeout: time.Second})
}
