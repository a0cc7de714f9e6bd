package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// maxJSONBody is the largest body a JSON route reads.
const maxJSONBody = 64 << 10

// decodeJSON reads a small JSON object into v. Its errors are the API's: 400 for anything
// malformed (naming the field or the byte, never a Go type), 413 for a body over 64 KiB,
// 408 for a body that stalls past the read timeout.
func (s *Server) decodeJSON(c *gin.Context, v any) error {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// One object and nothing after it but white space.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			if terr != nil && !isJSONError(terr) {
				return clientBodyError(terr, s.notInTime())
			}
			return server.Errorf(server.EINVALID, "malformed JSON: unexpected data after the object at byte %d", dec.InputOffset())
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return server.Errorf(server.EINVALID, "request body is empty; a JSON object is expected")
	case errors.As(err, &syn):
		return server.Errorf(server.EINVALID, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return server.Errorf(server.EINVALID, "the body must be a JSON object")
		}
		return server.Errorf(server.EINVALID, "field %q must be %s", typ.Field, jsonKind(typ.Type))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return server.Errorf(server.EINVALID, "malformed JSON: the body ends in the middle of a value")
	case isJSONError(err):
		return server.Errorf(server.EINVALID, "malformed JSON")
	default: // reading the body failed: the client's fault (stalled, cut short, too large)
		return clientBodyError(err, s.notInTime())
	}
}

// notInTime is the message of a small request whose body did not arrive within the read timeout.
func (s *Server) notInTime() string {
	return fmt.Sprintf("the request body did not arrive within %v", s.cfg.Limits.ReadTimeout)
}

// isJSONError reports whether err comes from decoding JSON rather than from reading the body.
func isJSONError(err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "json: ")
}

// jsonKind names, in JSON's terms, what a value of Go type t is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of another type"
	}
}

func (s *Server) register(c *gin.Context, email, password string) {
	if s.throttled(c, s.cfg.RegisterLimit, email) {
		return
	}
	u, err := s.cfg.Accounts.Register(c.Request.Context(), email, password)
	refundIfUnavailable(c, err)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("user registered", "request_id", c.GetString(ctxRequestID), "user_id", u.ID)
	c.JSON(http.StatusCreated, wire.User{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt})
}

func (s *Server) createUser(c *gin.Context) {
	var req wire.Credentials
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	s.register(c, req.Email, req.Password)
}

// registration is the tutorial's route: {"username": email, "password": ...}.
func (s *Server) registration(c *gin.Context) {
	var req struct {
		Username string `json:"username"`
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Username == "" {
		req.Username = req.Email
	}
	s.register(c, req.Username, req.Password)
}

func (s *Server) basicLogin(c *gin.Context) (string, time.Time, bool) {
	email, password, ok := c.Request.BasicAuth()
	if !ok {
		c.Header("WWW-Authenticate", `Basic realm="v2m"`)
		s.fail(c, server.Errorf(server.EUNAUTHORIZED, "HTTP Basic credentials required"))
		return "", time.Time{}, false
	}
	if s.throttled(c, s.cfg.LoginLimit, email) {
		return "", time.Time{}, false
	}
	tok, exp, err := s.cfg.Accounts.Login(c.Request.Context(), email, password)
	refundIfUnavailable(c, err)
	if err != nil {
		if server.IsCode(err, server.EUNAUTHORIZED) {
			c.Header("WWW-Authenticate", `Basic realm="v2m"`) // these routes take Basic, not Bearer
		}
		s.fail(c, err)
		return "", time.Time{}, false
	}
	return tok, exp, true
}

func (s *Server) createToken(c *gin.Context) {
	if tok, exp, ok := s.basicLogin(c); ok {
		c.JSON(http.StatusOK, wire.Token{Token: tok, ExpiresAt: exp.UTC()})
	}
}

// login is the tutorial's route: the JWT as plain text.
func (s *Server) login(c *gin.Context) {
	if tok, _, ok := s.basicLogin(c); ok {
		c.String(http.StatusOK, tok)
	}
}

func (s *Server) me(c *gin.Context) {
	cl := claimsOf(c)
	role := cl.Role
	if role == "" {
		role = server.RoleUser
	}
	me := wire.Me{Email: cl.Subject, Issuer: cl.Issuer, ExpiresAt: cl.ExpiresAt, Role: role,
		ReadOnly: cl.ReadOnly, Personal: cl.Personal}
	if s.cfg.Service != nil {
		u, err := s.cfg.Service.UsageOf(c.Request.Context(), cl.Subject)
		if err != nil {
			s.fail(c, err)
			return
		}
		me.Usage = &wire.Usage{StoredBytes: u.StoredBytes, UploadBytes: u.UploadBytes, QuotaBytes: u.Limits.Bytes,
			OpenUploads: u.OpenUploads, MaxOpenUploads: u.Limits.OpenUploads, ActiveJobs: u.ActiveJobs,
			MaxActiveJobs: u.Limits.ActiveJobs, MaxDuration: u.Limits.Duration.Seconds()}
	}
	c.JSON(http.StatusOK, me)
}

// validate is the tutorial's route: the token's claims.
func (s *Server) validate(c *gin.Context) {
	cl := claimsOf(c)
	c.JSON(http.StatusOK, gin.H{"sub": cl.Subject, "username": cl.Subject, "iss": cl.Issuer,
		"iat": cl.IssuedAt.Unix(), "exp": cl.ExpiresAt.Unix(), "jti": cl.ID})
}
