package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/version"
	"github.com/v2m/v2m/pkg/server/token"
)

func keygenCommand() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen -o key.pem",
		Short: "Write a new Ed25519 private key for signing tokens (v2md auth --jwt-key-file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pem, err := token.GenerateEd25519PEM()
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(pem)
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(out, flags, 0o600)
			if err != nil {
				return fmt.Errorf("write key: %w (use --force to replace a key)", err)
			}
			if _, err := f.Write(pem); err != nil {
				f.Close()
				return fmt.Errorf("write key: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write key: %w", err)
			}
			k, _ := token.ParseKey(token.EdDSA, pem)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (kid %s)\n", out, k.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (mode 0600); - or empty for standard output")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}

// Description is what `v2md describe` prints: every service subcommand with its settings and
// HTTP paths. Deployment checks compare manifests against it.
type Description struct {
	Version     string                  `json:"version"`
	Subcommands []SubcommandDescription `json:"subcommands"`
}

// SubcommandDescription describes one service subcommand.
type SubcommandDescription struct {
	Name      string               `json:"name"`
	Settings  []SettingDescription `json:"settings"`
	HTTPPaths []string             `json:"http_paths"`
}

// SettingDescription describes one setting.
type SettingDescription struct {
	Name    string `json:"name"`
	Env     string `json:"env"`
	Default string `json:"default"`
	Usage   string `json:"usage"`
}

// Describe returns the description of v2md's service subcommands.
func Describe(stderr io.Writer) Description {
	d := Description{Version: version.Version}
	for _, sc := range subcommands(stderr) {
		sd := SubcommandDescription{Name: sc.cmd.Name(), HTTPPaths: sc.paths}
		for _, st := range sc.settings.list {
			def := fmt.Sprint(st.def)
			switch v := st.def.(type) {
			case time.Duration:
				def = v.String()
			case []string:
				def, _ = marshalString(v)
			}
			sd.Settings = append(sd.Settings, SettingDescription{Name: st.name, Env: EnvName(st.name), Default: def, Usage: st.usage})
		}
		d.Subcommands = append(d.Subcommands, sd)
	}
	return d
}

func marshalString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func describeCommand(stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "describe",
		Short: "Print every service subcommand's settings and HTTP paths as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(Describe(stderr))
		},
	}
}
