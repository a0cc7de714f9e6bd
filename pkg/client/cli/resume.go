package cli

import (
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/v2m/v2m/pkg/client"
)

// What tells the user how to take up an upload that was cut off.

// resumeCommand is the command line of cmd, as it was run, for files: its flags that were
// set, then the files, each quoted for a POSIX shell.
func resumeCommand(cmd *cobra.Command, files []string) string {
	words := strings.Fields(cmd.CommandPath())
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		v := fl.Value.String()
		if fl.NoOptDefVal != "" && v == fl.NoOptDefVal {
			words = append(words, "--"+fl.Name)
		} else {
			words = append(words, "--"+fl.Name+"="+v)
		}
	})
	for _, f := range files {
		if strings.HasPrefix(f, "-") {
			words = append(words, "--")
			break
		}
	}
	words = append(words, files...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// shellQuote returns s as one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// resumable reports whether an upload that failed with err can be taken up again by a rerun:
// it was cut off (Ctrl-C, the network, the server's trouble) rather than refused.
func resumable(err error) bool {
	st := client.StatusOf(err)
	return st == 0 || st >= 500 || st == 408 || st == 429
}

// sentCounter remembers how far an upload got, from its progress callbacks, which may come
// from several goroutines.
type sentCounter struct {
	mu          sync.Mutex
	done, total int64
	began       bool
}

func (s *sentCounter) set(done, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done, s.total, s.began = done, total, true
}

// get returns the bytes the server had at the last call, the size, and whether there was one.
func (s *sentCounter) get() (done, total int64, began bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, s.total, s.began
}
