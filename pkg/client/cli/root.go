package cli

import (
	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/version"
)

// newCmdRoot returns the v2m command with all its subcommands.
func newCmdRoot(f *factory) *cobra.Command {
	return rootWith(f,
		newCmdRegister(f, nil), newCmdLogin(f, nil), newCmdLogout(f, nil), newCmdWhoami(f, nil),
		newCmdUpload(f, nil), newCmdJobs(f, nil), newCmdStatus(f, nil), newCmdWait(f, nil),
		newCmdWebhook(f), newCmdAdmin(f), newCmdToken(f),
		newCmdDownload(f, nil), newCmdConvert(f, nil), newCmdRm(f, nil))
}

// rootWith returns the v2m command with the global flags, bound to f, and cmds. Before any
// subcommand runs it resolves the configuration, so that a bad --server or config.yaml is
// reported before anything else.
func rootWith(f *factory, cmds ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "v2m",
		Short:         "Convert videos to MP3 on a v2m server",
		Version:       version.String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd {
				return nil // a completion resolves what it needs itself, and says nothing
			}
			f.flags.serverChanged = cmd.Flags().Changed("server")
			f.flags.retryChanged = cmd.Flags().Changed("retry-for")
			_, err := f.config()
			return err
		},
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetIn(f.io.in)
	root.SetOut(f.io.out)
	root.SetErr(f.io.errOut)
	pf := root.PersistentFlags()
	pf.StringVar(&f.flags.server, "server", "", "server URL (env V2M_SERVER, config key server; default "+DefaultServer+")")
	pf.BoolVar(&f.flags.json, "json", false, "print JSON on stdout")
	pf.StringVar(&f.flags.configDir, "config-dir", "", "configuration directory (env V2M_CONFIG_DIR; default <user config dir>/v2m)")
	pf.DurationVar(&f.flags.retryFor, "retry-for", DefaultRetryFor,
		"how long to keep retrying while the server answers 503 or 429, e.g. 30s; 0 gives up at once (env V2M_RETRY_FOR)")
	root.AddCommand(cmds...)
	return root
}
