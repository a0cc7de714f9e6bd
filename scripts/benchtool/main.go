// Command benchtool holds the small measurements that scripts/bench.sh and
// scripts/bench-distributed.sh cannot make with the shell alone. It is not shipped.
//
//	benchtool freeport                              print a free TCP port on 127.0.0.1
//	benchtool gridfs -uri U -db D -file F [-chunk N] time a bare GridFS upload and download of F
//	benchtool dropdb -uri U -db D                   drop a MongoDB database
//	benchtool span -start MSG -end MSG LOG...       seconds from the first start to the last end
//	                                                record of v2md JSON logs, and the end count
//	benchtool proxy -target URL [-listen A] [-rate R] a reverse proxy to URL, limited to R (e.g.
//	                                                100Mbit, shared by all connections and both
//	                                                directions); prints url=... first, and its
//	                                                byte counters at GET /_stats and on SIGTERM;
//	                                                PUT/POST /_sink discards a body at the rate
//	benchtool maxrss [-o FILE] -- CMD ARGS...       run CMD, then print its peak RSS (maxrss_kib=N,
//	                                                ru_maxrss) to FILE or stdout; exits as CMD did
//	benchtool job                                   the id, state, size and source_size of the job
//	                                                in v2m upload/convert --json output on stdin
//
// Every result is printed as key=value pairs on one line, for the scripts to read.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		var ec *exitCodeError
		if errors.As(err, &ec) {
			os.Exit(ec.code)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool freeport|gridfs|dropdb|span|proxy|maxrss|job [flags]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "freeport":
		return freePort(out)
	case "gridfs":
		uri := fs.String("uri", "", "MongoDB URI")
		db := fs.String("db", "", "database (a fresh name; the bucket is dropped afterwards)")
		file := fs.String("file", "", "file to upload and download")
		chunk := fs.Int("chunk", 128<<10, "GridFS chunk size in bytes")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *uri == "" || *db == "" || *file == "" {
			return errors.New("gridfs needs -uri, -db and -file")
		}
		return gridfsRoundTrip(ctx, out, *uri, *db, *file, int32(*chunk))
	case "dropdb":
		uri := fs.String("uri", "", "MongoDB URI")
		db := fs.String("db", "", "database to drop")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *uri == "" || *db == "" {
			return errors.New("dropdb needs -uri and -db")
		}
		return dropDB(ctx, *uri, *db)
	case "span":
		start := fs.String("start", "conversion started", "msg of the records that start the span")
		end := fs.String("end", "conversion done", "msg of the records that end it")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return span(out, *start, *end, fs.Args())
	case "proxy":
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
		target := fs.String("target", "", "URL of the server to forward to")
		rate := fs.String("rate", "0", "rate limit for all bodies together, e.g. 100Mbit (0: none)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return runProxy(ctx, out, *listen, *target, *rate)
	case "maxrss":
		res := fs.String("o", "", "file for the maxrss_kib=N line (default stdout)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *res == "" {
			return maxRSS(ctx, os.Stdin, out, os.Stderr, out, fs.Args())
		}
		f, err := os.Create(*res)
		if err != nil {
			return fmt.Errorf("maxrss: %w", err)
		}
		err = maxRSS(ctx, os.Stdin, out, os.Stderr, f, fs.Args())
		if cerr := f.Close(); err == nil && cerr != nil {
			return fmt.Errorf("maxrss: %w", cerr)
		}
		return err
	case "job":
		return jobFields(os.Stdin, out)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func freePort(out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	fmt.Fprintln(out, port)
	return nil
}

func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri, err)
	}
	if err := c.Ping(ctx, nil); err != nil {
		_ = c.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("ping %s: %w", uri, err)
	}
	return c, nil
}

// gridfsRoundTrip uploads path into a GridFS bucket with the driver's own GridFS code,
// downloads it into a temporary file, checks the size, and
// prints both durations.
func gridfsRoundTrip(ctx context.Context, out io.Writer, uri, dbName, path string, chunk int32) error {
	c, err := connect(ctx, uri)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	bucket := c.Database(dbName).GridFSBucket(options.GridFSBucket().SetName("bench").SetChunkSizeBytes(chunk))
	defer bucket.Drop(context.WithoutCancel(ctx))

	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}

	t0 := time.Now()
	id, err := bucket.UploadFromStream(ctx, filepath.Base(path), bufio.NewReaderSize(in, int(chunk)))
	if err != nil {
		return fmt.Errorf("gridfs upload %s: %w", path, err)
	}
	up := time.Since(t0)

	tmp, err := os.CreateTemp("", "benchtool-gridfs-*")
	if err != nil {
		return fmt.Errorf("create download file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	t1 := time.Now()
	n, err := bucket.DownloadToStream(ctx, id, tmp)
	if err != nil {
		return fmt.Errorf("gridfs download %v: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write download file: %w", err)
	}
	down := time.Since(t1)
	if n != st.Size() {
		return fmt.Errorf("gridfs download %v: got %d bytes, uploaded %d", id, n, st.Size())
	}
	fmt.Fprintf(out, "bytes=%d upload_s=%.3f download_s=%.3f\n", n, up.Seconds(), down.Seconds())
	return nil
}

func dropDB(ctx context.Context, uri, db string) error {
	c, err := connect(ctx, uri)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	if err := c.Database(db).Drop(ctx); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}

// span reads slog JSON records from the logs and prints the seconds from the earliest record
// whose msg is start to the latest whose msg is end, and how many end records there were.
func span(out io.Writer, startMsg, endMsg string, logs []string) error {
	if len(logs) == 0 {
		return errors.New("span needs at least one log file")
	}
	var first, last time.Time
	ends := 0
	for _, p := range logs {
		if err := eachRecord(p, func(t time.Time, msg string) {
			switch msg {
			case startMsg:
				if first.IsZero() || t.Before(first) {
					first = t
				}
			case endMsg:
				ends++
				if t.After(last) {
					last = t
				}
			}
		}); err != nil {
			return err
		}
	}
	if first.IsZero() || ends == 0 {
		return fmt.Errorf("no %q or no %q record in %s", startMsg, endMsg, strings.Join(logs, ", "))
	}
	fmt.Fprintf(out, "count=%d seconds=%.3f\n", ends, last.Sub(first).Seconds())
	return nil
}

func eachRecord(path string, fn func(t time.Time, msg string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Time.IsZero() {
			continue // not a JSON record (e.g. a panic trace)
		}
		fn(rec.Time, rec.Msg)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	return nil
}
