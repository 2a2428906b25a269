package policy

import (
	"strings"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
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
	powerful      = Rule{Kind: Powerful}
)

// on is an object rule: action on the object named by field.
func on(kind, action, field string) Rule {
	return Rule{Kind: Object, Checks: []ObjectCheck{{Action: action, Kind: kind, Field: field}}}
}

func project(action, field string) Rule     { return on("project", action, field) }
func circle(action, field string) Rule      { return on("circle", action, field) }
func experiment(action, field string) Rule  { return on("experiment", action, field) }
func library(action, field string) Rule     { return on("library", action, field) }
func realization(action, field string) Rule { return on("realization", action, field) }

// orSelf lets a request that names only the caller through (leaving).
func orSelf(r Rule, field string) Rule {
	r.SelfField = field
	return r
}

// Rules holds the one authorization rule of every API operation.
var Rules = map[string]Rule{
	Op(trellisv1connect.ApiInfoGetVersionProcedure): public,

	Op(trellisv1connect.AuthLoginProcedure):   public,
	Op(trellisv1connect.AuthRefreshProcedure): public, // the refresh token is the credential
	Op(trellisv1connect.AuthLogoutProcedure):  authenticated,
	Op(trellisv1connect.AuthWhoAmIProcedure):  authenticated,

	// Challenge login: the answer to the challenge is the credential.
	Op(trellisv1connect.AuthRequestChallengeProcedure):  public,
	Op(trellisv1connect.AuthChallengeResponseProcedure): public,

	// API tokens: each acts on the caller's own. Creating one also needs a
	// credential not narrowed by scopes, or scoped "all" (ScopeAllows).
	Op(trellisv1connect.AuthCreateAPITokenProcedure): authenticated,
	Op(trellisv1connect.AuthListAPITokensProcedure):  authenticated,
	Op(trellisv1connect.AuthRevokeAPITokenProcedure): authenticated,

	// Token exchange: the user's token and the service's proof are the
	// credentials. Registering services is the admins'.
	Op(trellisv1connect.AuthExchangeTokenProcedure):       public,
	Op(trellisv1connect.ServicesRegisterServiceProcedure): admin,
	Op(trellisv1connect.ServicesListServicesProcedure):    admin,
	Op(trellisv1connect.ServicesSetServiceStateProcedure): admin,
	Op(trellisv1connect.ServicesRemoveServiceProcedure):   admin,

	Op(trellisv1connect.OidcClientsAddClientProcedure):    admin,
	Op(trellisv1connect.OidcClientsListClientsProcedure):  admin,
	Op(trellisv1connect.OidcClientsRemoveClientProcedure): admin,

	// The oidc authentication backend (trellis.v1.ext.auth.oidc.v1): a
	// login starts anonymously (or, to link, as the caller) and is
	// collected with its poll secret; links are the caller's own.
	Op(oidcv1connect.LoginStartLoginProcedure):  public,
	Op(oidcv1connect.LoginFinishLoginProcedure): public, // the poll secret is the credential
	Op(oidcv1connect.LoginListLinksProcedure):   authenticated,
	Op(oidcv1connect.LoginUnlinkProcedure):      authenticated,

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

	// SSH keys and certificates. A certificate is always for the caller:
	// its principal is the caller's uid and its key one the caller
	// registered. Sites fetch the authority's key to trust it.
	Op(trellisv1connect.UsersAddSSHKeyProcedure):                    self("uid"),
	Op(trellisv1connect.UsersListSSHKeysProcedure):                  self("uid"),
	Op(trellisv1connect.UsersRemoveSSHKeyProcedure):                 self("uid"),
	Op(trellisv1connect.AuthIssueSSHCertificateProcedure):           authenticated,
	Op(trellisv1connect.ApiInfoGetSSHCertificateAuthorityProcedure): public,
	Op(trellisv1connect.ApiInfoGetServerCertificateProcedure):       public,
	Op(trellisv1connect.ApiInfoGetClientCertificateProcedure):       public, // unbound: it authenticates nothing until a login binds it

	Op(trellisv1connect.AdminListAuditEventsProcedure):            admin,
	Op(trellisv1connect.AdminListOutboxProcedure):                 admin,
	Op(trellisv1connect.AdminRotateCertificateAuthorityProcedure): admin,

	// Projects. Requesting one and asking to join one are what a powerless
	// user may do; listings show only what the caller may read.
	Op(trellisv1connect.ProjectsRequestProjectProcedure):        authenticated,
	Op(trellisv1connect.ProjectsJoinProjectProcedure):           authenticated,
	Op(trellisv1connect.ProjectsApproveProjectProcedure):        admin,
	Op(trellisv1connect.ProjectsRejectProjectProcedure):         admin,
	Op(trellisv1connect.ProjectsGetProjectProcedure):            project(ProjectRead, "name"),
	Op(trellisv1connect.ProjectsListProjectsProcedure):          authenticated,
	Op(trellisv1connect.ProjectsGetProfileDescriptionProcedure): authenticated,
	Op(trellisv1connect.ProjectsGetProjectProfileProcedure):     project(ProjectRead, "name"),
	Op(trellisv1connect.ProjectsSetProjectProfileProcedure):     project(ProjectOwn, "name"),
	Op(trellisv1connect.ProjectsAddUsersProcedure):              project(ProjectAddUser, "name"),
	Op(trellisv1connect.ProjectsRemoveUsersProcedure):           orSelf(project(ProjectRemoveUser, "name"), "uids"),
	Op(trellisv1connect.ProjectsChangeRightsProcedure):          project(ProjectAddUser, "name"),
	Op(trellisv1connect.ProjectsSetOwnerProcedure):              project(ProjectOwn, "name"),
	Op(trellisv1connect.ProjectsAddChildProjectProcedure): {Kind: Object, Checks: []ObjectCheck{
		{Action: ProjectAddUser, Kind: "project", Field: "parent"},
		{Action: ProjectOwn, Kind: "project", Field: "child"},
	}},
	// Either side may undo a nesting.
	Op(trellisv1connect.ProjectsRemoveChildProjectProcedure): {Kind: Object, Any: true, Checks: []ObjectCheck{
		{Action: ProjectRemoveUser, Kind: "project", Field: "parent"},
		{Action: ProjectOwn, Kind: "project", Field: "child"},
	}},
	Op(trellisv1connect.ProjectsRemoveProjectProcedure): project(ProjectOwn, "name"),
	Op(trellisv1connect.ProjectsListMembersProcedure):   project(ProjectRead, "name"),

	// Circles.
	Op(trellisv1connect.CirclesCreateCircleProcedure):          circle(CircleCreate, "id"),
	Op(trellisv1connect.CirclesRemoveCircleProcedure):          circle(CircleOwn, "id"),
	Op(trellisv1connect.CirclesGetCircleProcedure):             circle(CircleRead, "id"),
	Op(trellisv1connect.CirclesListCirclesProcedure):           authenticated,
	Op(trellisv1connect.CirclesAddUsersProcedure):              circle(CircleAddUser, "id"),
	Op(trellisv1connect.CirclesJoinCircleProcedure):            powerful,
	Op(trellisv1connect.CirclesRemoveUsersProcedure):           orSelf(circle(CircleRemoveUser, "id"), "uids"),
	Op(trellisv1connect.CirclesChangeRightsProcedure):          circle(CircleAddUser, "id"),
	Op(trellisv1connect.CirclesSetOwnerProcedure):              circle(CircleOwn, "id"),
	Op(trellisv1connect.CirclesGetProfileDescriptionProcedure): authenticated,
	Op(trellisv1connect.CirclesGetCircleProfileProcedure):      circle(CircleRead, "id"),
	Op(trellisv1connect.CirclesSetCircleProfileProcedure):      circle(CircleOwn, "id"),

	// Notifications and requests concern the caller's own; answering a
	// request is further limited, by the service, to the party whose
	// consent it waits for. Sending needs standing: an admin, or a
	// project's owner writing to its members (checked by the service).
	Op(trellisv1connect.NotificationsListProcedure):           authenticated,
	Op(trellisv1connect.NotificationsMarkProcedure):           authenticated,
	Op(trellisv1connect.NotificationsWatchProcedure):          authenticated,
	Op(trellisv1connect.NotificationsListRequestsProcedure):   authenticated,
	Op(trellisv1connect.NotificationsAcceptRequestProcedure):  authenticated,
	Op(trellisv1connect.NotificationsDeclineRequestProcedure): authenticated,
	Op(trellisv1connect.NotificationsSendProcedure):           powerful,

	// Experiments. Listings show what the caller may read; exporting needs
	// read, importing needs create under the id given.
	Op(trellisv1connect.ExperimentsCreateExperimentProcedure):      experiment(ExperimentCreate, "id"),
	Op(trellisv1connect.ExperimentsGetExperimentProcedure):         experiment(ExperimentRead, "id"),
	Op(trellisv1connect.ExperimentsListExperimentsProcedure):       authenticated,
	Op(trellisv1connect.ExperimentsAddAspectsProcedure):            experiment(ExperimentModify, "id"),
	Op(trellisv1connect.ExperimentsChangeAspectsProcedure):         experiment(ExperimentModify, "id"),
	Op(trellisv1connect.ExperimentsRemoveAspectsProcedure):         experiment(ExperimentModify, "id"),
	Op(trellisv1connect.ExperimentsChangeAccessProcedure):          experiment(ExperimentModifyAccess, "id"),
	Op(trellisv1connect.ExperimentsGetProfileDescriptionProcedure): authenticated,
	Op(trellisv1connect.ExperimentsGetExperimentProfileProcedure):  experiment(ExperimentRead, "id"),
	Op(trellisv1connect.ExperimentsSetExperimentProfileProcedure):  experiment(ExperimentModify, "id"),
	Op(trellisv1connect.ExperimentsRemoveExperimentProcedure):      experiment(ExperimentOwn, "id"),
	Op(trellisv1connect.ExperimentsExportExperimentProcedure):      experiment(ExperimentRead, "id"),
	Op(trellisv1connect.ExperimentsImportExperimentProcedure):      experiment(ExperimentCreate, "id"),

	// Libraries. Adding an experiment also needs read on it, which the
	// service checks per experiment.
	Op(trellisv1connect.LibrariesCreateLibraryProcedure):         library(LibraryCreate, "id"),
	Op(trellisv1connect.LibrariesGetLibraryProcedure):            library(LibraryRead, "id"),
	Op(trellisv1connect.LibrariesListLibrariesProcedure):         authenticated,
	Op(trellisv1connect.LibrariesAddExperimentsProcedure):        library(LibraryAddExperiment, "id"),
	Op(trellisv1connect.LibrariesRemoveExperimentsProcedure):     library(LibraryRemoveExperiment, "id"),
	Op(trellisv1connect.LibrariesChangeAccessProcedure):          library(LibraryModifyAccess, "id"),
	Op(trellisv1connect.LibrariesGetProfileDescriptionProcedure): authenticated,
	Op(trellisv1connect.LibrariesGetLibraryProfileProcedure):     library(LibraryRead, "id"),
	Op(trellisv1connect.LibrariesSetLibraryProfileProcedure):     library(LibraryOwn, "id"),
	Op(trellisv1connect.LibrariesRemoveLibraryProcedure):         library(LibraryOwn, "id"),

	// Resources: the inventory is visible to whoever may realize.
	Op(trellisv1connect.ResourcesRegisterResourceProcedure): admin,
	Op(trellisv1connect.ResourcesGetResourceProcedure):      powerful,
	Op(trellisv1connect.ResourcesListResourcesProcedure):    powerful,
	Op(trellisv1connect.ResourcesSetResourceStateProcedure): admin,
	Op(trellisv1connect.ResourcesRemoveResourceProcedure):   admin,

	// Realizations: realizing needs realize on the experiment and
	// realize_experiment in the project.
	Op(trellisv1connect.RealizationsRealizeProcedure): {Kind: Object, Checks: []ObjectCheck{
		{Action: ExperimentRealize, Kind: "experiment", Field: "experiment"},
		{Action: ProjectRealizeExperiment, Kind: "project", Field: "project"},
	}},
	Op(trellisv1connect.RealizationsGetRealizationProcedure):      realization(RealizationRead, "id"),
	Op(trellisv1connect.RealizationsListRealizationsProcedure):    authenticated,
	Op(trellisv1connect.RealizationsRenewProcedure):               realization(RealizationModify, "id"),
	Op(trellisv1connect.RealizationsChangeBindingsProcedure):      realization(RealizationModify, "id"),
	Op(trellisv1connect.RealizationsChangeAccessProcedure):        realization(RealizationModifyAccess, "id"),
	Op(trellisv1connect.RealizationsReleaseProcedure):             realization(RealizationRelease, "id"),
	Op(trellisv1connect.RealizationsListAllRealizationsProcedure): admin,
	Op(trellisv1connect.RealizationsForceReleaseProcedure):        admin,

	// Policy: a user may ask about itself; admins about anyone.
	Op(trellisv1connect.PolicyCheckProcedure):       self("uid"),
	Op(trellisv1connect.PolicyExplainProcedure):     self("uid"),
	Op(trellisv1connect.PolicyListAllowedProcedure): self("uid"),
}
