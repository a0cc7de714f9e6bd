package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
)

// completionTimeout bounds the request a completion makes: a shell must not hang on a
// server that does not answer.
const completionTimeout = 3 * time.Second

// completeIDs completes the first argument of a command that takes a JOB (or, with fids, a
// JOB or a FID) with the ids of the user's jobs, each described by its file and state, and
// with fids the file ids of their MP3s too. It never offers file names, never prompts, and
// offers nothing, silently, when the user is not logged in or the server does not answer.
func completeIDs(f *factory, fids bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		const directive = cobra.ShellCompDirectiveNoFileComp
		if len(args) > 0 {
			return nil, directive
		}
		// Completion runs no PersistentPreRunE: see what --server says here.
		f.flags.serverChanged = cmd.Flags().Changed("server")
		c, err := f.authClient()
		if err != nil {
			return nil, directive
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		jobs, err := c.Jobs(ctx)
		if err != nil {
			return nil, directive
		}
		var out []cobra.Completion
		add := func(id, desc string) {
			if id != "" && strings.HasPrefix(id, toComplete) {
				out = append(out, cobra.CompletionWithDesc(id, desc))
			}
		}
		for _, j := range jobs {
			add(j.ID, j.Filename+" ("+j.State+")")
		}
		if fids {
			for _, j := range jobs {
				if j.State != client.JobDone {
					continue
				}
				if len(j.Files) == 0 { // a split job's mp3_fid is the zip of its MP3s: its JOB gets them
					add(j.MP3FID, "the MP3 of "+j.Filename)
				}
				for _, file := range j.Files {
					add(file.FID, file.Title+" of "+j.Filename)
				}
			}
		}
		return out, directive
	}
}
