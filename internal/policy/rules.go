package policy

import (
	"strings"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// Op turns a Connect procedure ("/trellis.v1.Users/GetUser") into the
// operation name used in rules and audit records ("trellis.v1.Users/GetUser").
func Op(procedure string) string { return strings.TrimPrefix(procedure, "/") }

func self(field string) Rule { return Rule{Kind: SelfOrAdmin, Field: field} }

var (
	public        = Rule{Kind: Public}
	authenticated = Rule{Kind: Authenticated}
	admin         = Rule{Kind: Admin}
)

// Rules holds the one authorization rule of every API operation.
var Rules = map[string]Rule{
	Op(trellisv1connect.ApiInfoGetVersionProcedure): public,

	Op(trellisv1connect.AuthLoginProcedure):   public,
	Op(trellisv1connect.AuthRefreshProcedure): public, // the refresh token is the credential
	Op(trellisv1connect.AuthLogoutProcedure):  authenticated,
	Op(trellisv1connect.AuthWhoAmIProcedure):  authenticated,

	Op(trellisv1connect.UsersRegisterProcedure):              public,
	Op(trellisv1connect.UsersConfirmEmailProcedure):          public, // the mailed token is the credential
	Op(trellisv1connect.UsersResendConfirmationProcedure):    public,
	Op(trellisv1connect.UsersRequestPasswordResetProcedure):  public,
	Op(trellisv1connect.UsersResetPasswordProcedure):         public, // the mailed token is the credential
	Op(trellisv1connect.UsersGetProfileDescriptionProcedure): public, // registration forms need it
	Op(trellisv1connect.UsersGetUserProcedure):               self("uid"),
	Op(trellisv1connect.UsersGetUserProfileProcedure):        self("uid"),
	Op(trellisv1connect.UsersSetUserProfileProcedure):        self("uid"),
	Op(trellisv1connect.UsersChangePasswordProcedure):        self("uid"),
	Op(trellisv1connect.UsersListUsersProcedure):             admin,
	Op(trellisv1connect.UsersSetUserStateProcedure):          admin,
	Op(trellisv1connect.UsersSetAdminProcedure):              admin,

	Op(trellisv1connect.AdminListAuditEventsProcedure): admin,
	Op(trellisv1connect.AdminListOutboxProcedure):      admin,
}
