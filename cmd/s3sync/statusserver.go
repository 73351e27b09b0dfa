package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	s3fs "github.com/s3sync/s3sync/fs"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/state"
)

// stateInfo is written to the state dir so `status WORKDIR` can find it.
type stateInfo struct {
	Workdir    string    `json:"workdir"`
	Mountpoint string    `json:"mountpoint"`
	Remote     string    `json:"remote"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
}

// mount is what a status report says of the mount.
func (i stateInfo) mount() mirror.MountInfo {
	return mirror.MountInfo{Workdir: i.Workdir, Mountpoint: i.Mountpoint, Remote: i.Remote, PID: i.PID}
}

const (
	infoFile   = "info.json"
	socketFile = "status.sock"
)

// statusServer answers `s3sync status` from the running mount over a unix
// socket in the state dir (the database is locked while mounted).
type statusServer struct {
	info     stateInfo
	st       *state.State
	d        *mirror.Drainer
	stateDir string
	fs       *s3fs.Mounted
}

// report is what `s3sync status` and the metrics show of the mount.
func (s *statusServer) report() (mirror.Report, error) {
	rep, err := mirror.BuildReport(s.info.mount(), s.st, true, s.d.State())
	if err == nil {
		err = mirror.AddConflicts(&rep, s.st)
	}
	if s.fs != nil {
		rep.CachedInodes = s.fs.KnownNodes()
	}
	return rep, err
}

func (s *statusServer) serve(log *slog.Logger) func() {
	path := filepath.Join(s.stateDir, socketFile)
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		log.Warn("status socket unavailable; `s3sync status` will not answer while mounted", "err", err)
		return func() {}
	}
	os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.report()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /retry", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.st.Journal().RetryFailed()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.d.Kick()
		fmt.Fprint(w, n)
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	return func() {
		hs.Close()
		os.Remove(path)
	}
}
