package daemon

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// settingUse matches a read of a setting by name in this package's code.
var settingUse = regexp.MustCompile(`\bs\.(?:str|int|flag|dur|strings|size|secret|isSet)\("([a-z0-9-]+)"\)`)

// TestEverySettingReadIsDeclared: a setting read under a name that no command declares (a typo)
// would silently read as zero. Every name the code reads must be a declared setting.
func TestEverySettingReadIsDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, sc := range Describe(&bytes.Buffer{}).Subcommands {
		for _, st := range sc.Settings {
			declared[st.Name] = true
		}
	}
	// v2md admin's subcommands declare settings of their own.
	for _, cmd := range adminCommand(io.Discard, io.Discard).Commands() {
		cmd.Flags().VisitAll(func(f *pflag.Flag) { declared[f.Name] = true })
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range settingUse.FindAllSubmatch(src, -1) {
			reads++
			name := string(m[1])
			// secret("x") reads x and x-file.
			if !declared[name] && !declared[name+"-file"] {
				t.Errorf("%s reads setting %q, which no command declares", f, name)
			}
		}
	}
	if reads < 50 {
		t.Fatalf("found only %d setting reads: the pattern no longer matches the code", reads)
	}
}
