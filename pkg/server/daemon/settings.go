package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/wire"
)

// A setting is one configuration value of a subcommand: a flag --name, the environment variable
// V2MD_NAME (upper case, "-" as "_"), or the key name in the file given by --config, in that
// order of precedence.
type setting struct {
	name  string
	def   any // string, int, bool, time.Duration or []string: the flag's type
	usage string
}

// EnvName is the environment variable of a setting.
func EnvName(name string) string {
	return "V2MD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// The settings every subcommand has.
var commonSettings = []setting{
	{"config", "", "configuration file (YAML, TOML or JSON) with any of these settings as keys"},
	{"log-format", "text", "log format: text or json"},
	{"log-level", "info", "log level: debug, info, warn or error"},
}

// settings binds a command's settings to flags, the environment and a config file.
type settings struct {
	v    *viper.Viper
	list []setting
	tp   trace.TracerProvider // the service's, once startTracing ran
}

func bind(cmd *cobra.Command, list ...[]setting) *settings {
	s := &settings{v: viper.New()}
	s.v.SetEnvPrefix("V2MD")
	s.v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	s.v.AutomaticEnv()
	all := append([]setting{}, commonSettings...)
	for _, l := range list {
		all = append(all, l...)
	}
	s.list = all
	fs := cmd.Flags()
	for _, st := range all {
		usage := st.usage + " (env " + EnvName(st.name) + ")"
		switch d := st.def.(type) {
		case string:
			fs.String(st.name, d, usage)
		case int:
			fs.Int(st.name, d, usage)
		case bool:
			fs.Bool(st.name, d, usage)
		case time.Duration:
			fs.Duration(st.name, d, usage)
		case []string:
			fs.StringSlice(st.name, d, usage)
		default:
			panic(fmt.Sprintf("setting %s: unsupported type %T", st.name, d)) // a programming error, caught by tests
		}
		_ = s.v.BindPFlag(st.name, fs.Lookup(st.name))
	}
	return s
}

// load reads the config file, when one is given.
func (s *settings) load() error {
	if f := s.v.GetString("config"); f != "" {
		s.v.SetConfigFile(f)
		if err := s.v.ReadInConfig(); err != nil {
			return fmt.Errorf("read config %s: %w", f, err)
		}
	}
	known := map[string]bool{}
	for _, st := range s.list {
		known[st.name] = true
	}
	for _, k := range s.v.AllKeys() {
		if !known[k] {
			return badSetting("config %s: unknown setting %q", s.v.ConfigFileUsed(), k)
		}
	}
	return nil
}

func (s *settings) str(name string) string          { return strings.TrimSpace(s.v.GetString(name)) }
func (s *settings) int(name string) int             { return s.v.GetInt(name) }
func (s *settings) dur(name string) time.Duration   { return s.v.GetDuration(name) }
func (s *settings) strings(name string) []string    { return s.v.GetStringSlice(name) }
func (s *settings) size(name string) (int64, error) { return parseSize(name, s.v.GetString(name)) }
func (s *settings) isSet(name string) bool          { return s.v.IsSet(name) }

// flag reads a true/false setting; any other value is a bad setting (viper would read it as
// false without a word).
func (s *settings) flag(name string) (bool, error) {
	if b, ok := s.v.Get(name).(bool); ok {
		return b, nil
	}
	v := s.str(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badSetting("--%s must be true or false, not %q", name, v)
	}
	return b, nil
}

// secret returns the value of a secret setting: the content of the file named by name-file
// (for Kubernetes secret mounts), or else the setting itself.
func (s *settings) secret(name string) (string, error) {
	if f := s.str(name + "-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return s.str(name), nil
}

// parseSize reads a byte count above 0, as wire.ParseSize does.
func parseSize(name, v string) (int64, error) {
	n, err := wire.ParseSize(v)
	if err != nil || n <= 0 {
		return 0, badSetting("--%s: %q is not a size (like 8MiB or 131072)", name, strings.TrimSpace(v))
	}
	return n, nil
}

// formatSize writes a byte count as parseSize reads it, in the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
