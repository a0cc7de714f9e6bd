// Package client is the Go SDK for the v2m HTTP API (docs/api.md). It speaks only HTTP and
// imports nothing from the server.
//
// A Client holds the server URL and a bearer token:
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithToken(tok))
//	job, err := c.Upload(ctx, "talk.mp4", client.UploadOptions{State: client.NewFileState(statePath)})
//	job, err = c.Wait(ctx, job.ID, nil)
//	err = c.Download(ctx, job.MP3FID, "talk.mp3", nil)
//
// The JSON bodies (Job, UploadInfo, User, Token, Me) are package wire's, the definitions the
// server answers with, aliased here; wire.MP3Name gives the name the server gives a job's MP3.
//
// # Errors
//
// An error answered by the server is an *APIError carrying the HTTP status and the documented
// code ("not_found", "unauthorized", ...); StatusOf, IsNotFound and IsUnauthorized look through
// wrapping. A request that got no answer is a *ConnError, whose message is the reason in a few
// words ("connection refused") and which unwraps to the transport's error. IsUnreachable tells
// a server that cannot be reached at all (refused, unresolvable) apart from one that answered.
//
// # Uploads
//
// Upload sends a file as a chunked upload: it creates the upload, sends the parts the server
// does not have yet in parallel (UploadOptions.Parallel, default 4), each straight from the
// file through an io.SectionReader with its CRC-32C (Castagnoli) in X-Part-CRC32C, retries a
// part a few times with backoff on network errors and 5xx answers, and completes the upload.
// Memory stays bounded whatever the file's size. With a StateStore (FileState keeps a small
// JSON file) the upload id is remembered under the file's absolute path, size, modification
// time and the server, so that a rerun after an interruption asks the server which parts it
// has and sends only the others; an upload the server no longer knows is started afresh. The
// whole-file SHA-256 is sent only when UploadOptions.SHA256 is set.
//
// # Jobs and files
//
// Wait long-polls a job (?wait=30s) until it is done or failed, or the context ends. Download
// writes into dst+".part" and resumes an interrupted download with Range and If-Range, so a
// file that changed meanwhile is fetched whole; the part file is renamed to dst at the end.
// Only a download cut off on the way keeps its part file; any other failure leaves nothing.
// DownloadFile does the same with options (NoClobber refuses to replace dst), and
// DownloadStream writes a file to an io.Writer, such as stdout.
//
// # Tokens
//
// A TokenStore keeps the token of one server. NewTokenStore returns the usual one: the OS
// keyring (service "v2m", user = the server URL), each call bounded by a timeout, falling back
// to <configdir>/tokens.json (mode 0600, a map from server URL to token) with one warning line
// when there is no usable keyring. A token given in V2M_TOKEN (EnvToken) overrides both and
// cannot be changed.
package client
