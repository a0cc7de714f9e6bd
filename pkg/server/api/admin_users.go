package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Paging of GET /v1/admin/users.
const (
	defaultUsersPage = 100
	maxUsersPage     = 1000
)

// adminUserRoutes registers the routes that manage users (/v1/admin/users...).
func (s *Server) adminUserRoutes(admin *gin.RouterGroup) {
	if s.cfg.UserAdmin == nil {
		return
	}
	admin.GET("/users", s.adminListUsers)
	admin.POST("/users/:email/disable", func(c *gin.Context) { s.adminSetDisabled(c, true) })
	admin.POST("/users/:email/enable", func(c *gin.Context) { s.adminSetDisabled(c, false) })
}

func adminUser(u *server.User) wire.AdminUser {
	role := u.Role
	if role == "" {
		role = server.RoleUser
	}
	return wire.AdminUser{ID: u.ID, Email: u.Email, Role: role, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC()}
}

// adminListUsers is GET /v1/admin/users?after=ID&limit=N: users by ascending id.
func (s *Server) adminListUsers(c *gin.Context) {
	after, limit := int64(0), defaultUsersPage
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(c, server.Errorf(server.EINVALID, `"after" must be a user id (a whole number, 0 or more), not %q`, v))
			return
		}
		after = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxUsersPage {
			s.fail(c, server.Errorf(server.EINVALID, `"limit" must be a whole number from 1 to %d, not %q`, maxUsersPage, v))
			return
		}
		limit = n
	}
	users, err := s.cfg.UserAdmin.ListUsers(c.Request.Context(), caller(c), after, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := wire.AdminUserList{Users: make([]wire.AdminUser, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, adminUser(u))
	}
	if len(users) == limit {
		out.Next = users[len(users)-1].ID
	}
	c.JSON(http.StatusOK, out)
}

// adminSetDisabled is POST /v1/admin/users/{email}/disable and .../enable.
func (s *Server) adminSetDisabled(c *gin.Context, disabled bool) {
	u, err := s.cfg.UserAdmin.SetUserDisabled(c.Request.Context(), caller(c), c.Param("email"), disabled)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("user disabled or enabled by an administrator", "request_id", c.GetString(ctxRequestID), "user_id", u.ID,
		"disabled", u.Disabled)
	c.JSON(http.StatusOK, adminUser(u))
}
