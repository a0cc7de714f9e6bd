package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// jobFields reads the JSON that v2m upload --json (a job) or v2m convert --json ({"job": a
// job, ...}) printed and prints the job's id, state and sizes as key=value pairs: size is what
// the job says was uploaded, source_size (printed only when the job has it) the size of the
// original file.
func jobFields(in io.Reader, out io.Writer) error {
	type job struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		Size       *int64 `json:"size"`
		SourceSize *int64 `json:"source_size"`
	}
	var doc struct {
		job
		Job *job `json:"job"`
	}
	if err := json.NewDecoder(in).Decode(&doc); err != nil {
		return fmt.Errorf("job: read JSON: %w", err)
	}
	j := doc.job
	if doc.Job != nil {
		j = *doc.Job
	}
	if j.ID == "" || j.Size == nil {
		return fmt.Errorf("job: no job with an id and a size in the JSON")
	}
	f := []string{"id=" + j.ID, "state=" + j.State, fmt.Sprintf("size=%d", *j.Size)}
	if j.SourceSize != nil {
		f = append(f, fmt.Sprintf("source_size=%d", *j.SourceSize))
	}
	_, err := fmt.Fprintln(out, strings.Join(f, " "))
	return err
}
