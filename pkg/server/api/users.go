package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// decodeJSON reads a small JSON body into v: EINVALID for anything malformed.
func decodeJSON(c *gin.Context, v any) error {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return server.Errorf(server.EINVALID, "request body too large")
		case errors.Is(err, io.EOF):
			return server.Errorf(server.EINVALID, "request body is empty; JSON expected")
		default:
			return server.Errorf(server.EINVALID, "malformed JSON: %v", err)
		}
	}
	return nil
}

type userJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) register(c *gin.Context, email, password string) {
	if s.throttled(c, s.cfg.RegisterLimit, email) {
		return
	}
	u, err := s.cfg.Accounts.Register(c.Request.Context(), email, password)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("user registered", "request_id", c.GetString(ctxRequestID), "user_id", u.ID)
	c.JSON(http.StatusCreated, userJSON{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt})
}

func (s *Server) createUser(c *gin.Context) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
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
	if err := decodeJSON(c, &req); err != nil {
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
		c.JSON(http.StatusOK, gin.H{"token": tok, "expires_at": exp.UTC()})
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
	c.JSON(http.StatusOK, gin.H{"email": cl.Subject, "issuer": cl.Issuer, "expires_at": cl.ExpiresAt})
}

// validate is the tutorial's route: the token's claims.
func (s *Server) validate(c *gin.Context) {
	cl := claimsOf(c)
	c.JSON(http.StatusOK, gin.H{"sub": cl.Subject, "username": cl.Subject, "iss": cl.Issuer,
		"iat": cl.IssuedAt.Unix(), "exp": cl.ExpiresAt.Unix(), "jti": cl.ID})
}
