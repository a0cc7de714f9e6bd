package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Contract is what `v2md describe` prints: the subcommands, their settings and HTTP paths.
type Contract struct {
	Version     string       `json:"version,omitempty"`
	Subcommands []Subcommand `json:"subcommands"`
}

// Subcommand is one `v2md` subcommand.
type Subcommand struct {
	Name      string    `json:"name"`
	Settings  []Setting `json:"settings"`
	HTTPPaths []string  `json:"http_paths"`
}

// Setting is one setting: flag --Name, environment variable Env, its default.
type Setting struct {
	Name    string `json:"name"`
	Env     string `json:"env"`
	Default string `json:"default"`
	Usage   string `json:"usage,omitempty"`
}

// ReadContract decodes the JSON of `v2md describe` and checks that every subcommand and
// setting has a name and a V2MD_ environment variable.
func ReadContract(r io.Reader) (*Contract, error) {
	var c Contract
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return nil, fmt.Errorf("decode describe output: %w", err)
	}
	if len(c.Subcommands) == 0 {
		return nil, fmt.Errorf("decode describe output: no subcommands")
	}
	for _, s := range c.Subcommands {
		if s.Name == "" {
			return nil, fmt.Errorf("decode describe output: a subcommand has no name")
		}
		for _, st := range s.Settings {
			if st.Name == "" || !strings.HasPrefix(st.Env, "V2MD_") {
				return nil, fmt.Errorf("decode describe output: subcommand %s: setting %q has env %q", s.Name, st.Name, st.Env)
			}
		}
	}
	return &c, nil
}

// Describe runs `bin describe` and decodes its output.
func Describe(ctx context.Context, bin string) (*Contract, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "describe")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s describe: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	c, err := ReadContract(&stdout)
	if err != nil {
		return nil, fmt.Errorf("%s describe: %w", bin, err)
	}
	return c, nil
}

// Subcommand returns the subcommand called name, or nil.
func (c *Contract) Subcommand(name string) *Subcommand {
	for i := range c.Subcommands {
		if c.Subcommands[i].Name == name {
			return &c.Subcommands[i]
		}
	}
	return nil
}

// ByEnv returns the setting whose environment variable is env, or nil.
func (s *Subcommand) ByEnv(env string) *Setting {
	for i := range s.Settings {
		if s.Settings[i].Env == env {
			return &s.Settings[i]
		}
	}
	return nil
}

// ByName returns the setting called name, or nil.
func (s *Subcommand) ByName(name string) *Setting {
	for i := range s.Settings {
		if s.Settings[i].Name == name {
			return &s.Settings[i]
		}
	}
	return nil
}

// Serves reports whether path is one of the subcommand's HTTP paths.
func (s *Subcommand) Serves(path string) bool {
	for _, p := range s.HTTPPaths {
		if p == path {
			return true
		}
	}
	return false
}
