package service

import "github.com/trellis-testbed/trellis/internal/policy"

// An Op is one operation: its name and its one authorization rule. Names
// are the service's own; for operations of the API they equal the
// contract's procedure names, so audit records, metrics and API-token
// scopes speak one vocabulary (a test holds the two lists equal).
type Op struct {
	Name string
	Rule policy.Rule
}

// ops is the rule table: every operation, by name.
var ops = map[string]*Op{}

func newOp(name string, rule policy.Rule) *Op {
	if _, dup := ops[name]; dup {
		panic("service: operation " + name + " declared twice")
	}
	o := &Op{Name: name, Rule: rule}
	ops[name] = o
	return o
}

// Operation returns the operation named name (a contract procedure name,
// "trellis.v1.Users/GetUser"), or false when there is none: a door must
// refuse what has no rule.
func Operation(name string) (*Op, bool) {
	o, ok := ops[name]
	return o, ok
}

// Operations lists every operation, for documentation and tests.
func Operations() []*Op {
	out := make([]*Op, 0, len(ops))
	for _, o := range ops {
		out = append(out, o)
	}
	return out
}

var (
	public        = policy.Rule{Kind: policy.Public}
	authenticated = policy.Rule{Kind: policy.Authenticated}
	selfOrAdmin   = policy.Rule{Kind: policy.SelfOrAdmin}
	admin         = policy.Rule{Kind: policy.Admin}
	powerful      = policy.Rule{Kind: policy.Powerful}
	site          = policy.Rule{Kind: policy.Site}
)

func check(action, kind string) policy.ObjectCheck {
	return policy.ObjectCheck{Action: action, Kind: kind}
}

// allOf needs every check on the objects the request names, in order;
// anyOf one of them.
func allOf(checks ...policy.ObjectCheck) policy.Rule {
	return policy.Rule{Kind: policy.Object, Checks: checks}
}

func anyOf(checks ...policy.ObjectCheck) policy.Rule {
	return policy.Rule{Kind: policy.Object, Any: true, Checks: checks}
}

func onProject(action string) policy.Rule     { return allOf(check(action, "project")) }
func onCircle(action string) policy.Rule      { return allOf(check(action, "circle")) }
func onExperiment(action string) policy.Rule  { return allOf(check(action, "experiment")) }
func onLibrary(action string) policy.Rule     { return allOf(check(action, "library")) }
func onRealization(action string) policy.Rule { return allOf(check(action, "realization")) }

// listing shows only the objects on which the caller passes check.
func listing(action, kind string) policy.Rule {
	return policy.Rule{Kind: policy.Listing, Checks: []policy.ObjectCheck{check(action, kind)}}
}

// personal refuses what rule allows to a service acting for a user.
func personal(rule policy.Rule) policy.Rule {
	rule.Personal = true
	return rule
}

// consent is for the party whose consent a pending request waits for.
var consent = policy.Rule{Kind: policy.Consent}

// ownerOrAdmin needs one of the checks on the objects the request names,
// or an administrator when it names none.
func ownerOrAdmin(checks ...policy.ObjectCheck) policy.Rule {
	r := anyOf(checks...)
	r.Optional = true
	return r
}

// each applies the rule's last check to every further object named.
func each(r policy.Rule) policy.Rule {
	r.Each = true
	return r
}

// orSelf lets a request that acts only on the caller through (leaving).
func orSelf(r policy.Rule) policy.Rule {
	r.SelfOK = true
	return r
}

// The rule table.
var (
	// Rules holds the one authorization rule of every API operation.
	opApiInfoGetVersion = newOp("trellis.v1.ApiInfo/GetVersion", public)

	opAuthLogin   = newOp("trellis.v1.Auth/Login", public)
	opAuthRefresh = newOp("trellis.v1.Auth/Refresh", public) // the refresh token is the credential
	opAuthLogout  = newOp("trellis.v1.Auth/Logout", authenticated)
	opAuthWhoAmI  = newOp("trellis.v1.Auth/WhoAmI", authenticated)
	opAuthEcho    = newOp("trellis.v1.Auth/Echo", authenticated) // answers only the caller's own uid

	// Challenge login: the answer to the challenge is the credential.
	opAuthRequestChallenge  = newOp("trellis.v1.Auth/RequestChallenge", public)
	opAuthChallengeResponse = newOp("trellis.v1.Auth/ChallengeResponse", public)

	// API tokens: each acts on the caller's own. Creating one also needs a
	// credential not narrowed by scopes, or scoped "all" (ScopeAllows).
	opAuthCreateAPIToken = newOp("trellis.v1.Auth/CreateAPIToken", personal(authenticated))
	opAuthListAPITokens  = newOp("trellis.v1.Auth/ListAPITokens", authenticated)
	opAuthRevokeAPIToken = newOp("trellis.v1.Auth/RevokeAPIToken", authenticated)

	// Token exchange: the user's token and the service's proof are the
	// credentials. Registering services is the admins'.
	opAuthExchangeToken       = newOp("trellis.v1.Auth/ExchangeToken", public)
	opServicesRegisterService = newOp("trellis.v1.Services/RegisterService", admin)
	opServicesListServices    = newOp("trellis.v1.Services/ListServices", admin)
	opServicesSetServiceState = newOp("trellis.v1.Services/SetServiceState", admin)
	opServicesRemoveService   = newOp("trellis.v1.Services/RemoveService", admin)

	opOidcClientsAddClient    = newOp("trellis.v1.OidcClients/AddClient", admin)
	opOidcClientsListClients  = newOp("trellis.v1.OidcClients/ListClients", admin)
	opOidcClientsRemoveClient = newOp("trellis.v1.OidcClients/RemoveClient", admin)

	// The oidc authentication backend (trellis.v1.ext.auth.oidc.v1): a
	// login starts anonymously (or, to link, as the caller) and is
	// collected with its poll secret; links are the caller's own.
	opLoginStartLogin  = newOp("trellis.v1.ext.auth.oidc.v1.Login/StartLogin", public)
	opLoginFinishLogin = newOp("trellis.v1.ext.auth.oidc.v1.Login/FinishLogin", public) // the poll secret is the credential
	opLoginListLinks   = newOp("trellis.v1.ext.auth.oidc.v1.Login/ListLinks", authenticated)
	opLoginUnlink      = newOp("trellis.v1.ext.auth.oidc.v1.Login/Unlink", authenticated)

	opUsersRegister              = newOp("trellis.v1.Users/Register", public)
	opUsersConfirmEmail          = newOp("trellis.v1.Users/ConfirmEmail", public) // the mailed token is the credential
	opUsersResendConfirmation    = newOp("trellis.v1.Users/ResendConfirmation", public)
	opUsersRequestPasswordReset  = newOp("trellis.v1.Users/RequestPasswordReset", public)
	opUsersResetPassword         = newOp("trellis.v1.Users/ResetPassword", public)         // the mailed token is the credential
	opUsersGetProfileDescription = newOp("trellis.v1.Users/GetProfileDescription", public) // registration forms need it
	opUsersGetUser               = newOp("trellis.v1.Users/GetUser", selfOrAdmin)
	opUsersGetUserProfile        = newOp("trellis.v1.Users/GetUserProfile", selfOrAdmin)
	opUsersSetUserProfile        = newOp("trellis.v1.Users/SetUserProfile", selfOrAdmin)
	opUsersChangePassword        = newOp("trellis.v1.Users/ChangePassword", selfOrAdmin)
	opUsersListUsers             = newOp("trellis.v1.Users/ListUsers", admin)
	opUsersSetUserState          = newOp("trellis.v1.Users/SetUserState", admin)
	opUsersSetAdmin              = newOp("trellis.v1.Users/SetAdmin", admin)
	// Account lifecycle (lifecycle.go): one closes one's own account with
	// its password, never through a service acting for one; admins remove,
	// create and import accounts.
	opUsersCloseAccount = newOp("trellis.v1.Users/CloseAccount", personal(authenticated))
	opUsersRemoveUser   = newOp("trellis.v1.Users/RemoveUser", admin)
	opUsersCreateUser   = newOp("trellis.v1.Users/CreateUser", admin)
	opUsersImportUsers  = newOp("trellis.v1.Users/ImportUsers", admin)

	// SSH keys and certificates. A certificate is always for the caller:
	// its principal is the caller's uid and its key one the caller
	// registered. Sites fetch the authority's key to trust it.
	opUsersAddSSHKey                    = newOp("trellis.v1.Users/AddSSHKey", selfOrAdmin)
	opUsersListSSHKeys                  = newOp("trellis.v1.Users/ListSSHKeys", selfOrAdmin)
	opUsersRemoveSSHKey                 = newOp("trellis.v1.Users/RemoveSSHKey", selfOrAdmin)
	opAuthIssueSSHCertificate           = newOp("trellis.v1.Auth/IssueSSHCertificate", personal(authenticated))
	opApiInfoGetSSHCertificateAuthority = newOp("trellis.v1.ApiInfo/GetSSHCertificateAuthority", public)
	opApiInfoGetServerCertificate       = newOp("trellis.v1.ApiInfo/GetServerCertificate", public)
	opApiInfoGetClientCertificate       = newOp("trellis.v1.ApiInfo/GetClientCertificate", public) // unbound: it authenticates nothing until a login binds it
	// The rights vocabulary is the same for everyone and names nobody's
	// objects: clients show it in help and forms before login.
	opApiInfoGetValidPermissions = newOp("trellis.v1.ApiInfo/GetValidPermissions", public)

	opAdminListAuditEvents            = newOp("trellis.v1.Admin/ListAuditEvents", admin)
	opAdminListOutbox                 = newOp("trellis.v1.Admin/ListOutbox", admin)
	opAdminRotateCertificateAuthority = newOp("trellis.v1.Admin/RotateCertificateAuthority", admin)
	opAdminListAttributes             = newOp("trellis.v1.Admin/ListAttributes", admin)
	opAdminAddAttribute               = newOp("trellis.v1.Admin/AddAttribute", admin)
	opAdminChangeAttribute            = newOp("trellis.v1.Admin/ChangeAttribute", admin)
	opAdminRemoveAttribute            = newOp("trellis.v1.Admin/RemoveAttribute", admin)
	// The one-time bootstrap token is the credential (bootstrap.go).
	opAdminBootstrap = newOp("trellis.v1.Admin/Bootstrap", public)

	// Projects. Requesting one and asking to join one are what a powerless
	// user may do; listings show only what the caller may read.
	opProjectsRequestProject        = newOp("trellis.v1.Projects/RequestProject", authenticated)
	opProjectsJoinProject           = newOp("trellis.v1.Projects/JoinProject", authenticated)
	opProjectsApproveProject        = newOp("trellis.v1.Projects/ApproveProject", admin)
	opProjectsRejectProject         = newOp("trellis.v1.Projects/RejectProject", admin)
	opProjectsGetProject            = newOp("trellis.v1.Projects/GetProject", onProject(policy.ProjectRead))
	opProjectsListProjects          = newOp("trellis.v1.Projects/ListProjects", listing(policy.ProjectRead, "project"))
	opProjectsGetProfileDescription = newOp("trellis.v1.Projects/GetProfileDescription", authenticated)
	opProjectsGetProjectProfile     = newOp("trellis.v1.Projects/GetProjectProfile", onProject(policy.ProjectRead))
	opProjectsSetProjectProfile     = newOp("trellis.v1.Projects/SetProjectProfile", onProject(policy.ProjectOwn))
	opProjectsAddUsers              = newOp("trellis.v1.Projects/AddUsers", onProject(policy.ProjectAddUser))
	opProjectsRemoveUsers           = newOp("trellis.v1.Projects/RemoveUsers", orSelf(onProject(policy.ProjectRemoveUser)))
	opProjectsChangeRights          = newOp("trellis.v1.Projects/ChangeRights", onProject(policy.ProjectAddUser))
	opProjectsSetOwner              = newOp("trellis.v1.Projects/SetOwner", onProject(policy.ProjectOwn))
	opProjectsAddChildProject       = newOp("trellis.v1.Projects/AddChildProject", allOf(check(policy.ProjectAddUser, "project"), check(policy.ProjectOwn, "project")))
	// Either side may undo a nesting.
	opProjectsRemoveChildProject = newOp("trellis.v1.Projects/RemoveChildProject", anyOf(check(policy.ProjectRemoveUser, "project"), check(policy.ProjectOwn, "project")))
	opProjectsRemoveProject      = newOp("trellis.v1.Projects/RemoveProject", onProject(policy.ProjectOwn))
	opProjectsListMembers        = newOp("trellis.v1.Projects/ListMembers", onProject(policy.ProjectRead))
	// Projects migrated in from another testbed (lifecycle.go).
	opProjectsImportProjects = newOp("trellis.v1.Projects/ImportProjects", admin)

	// Circles.
	opCirclesCreateCircle          = newOp("trellis.v1.Circles/CreateCircle", onCircle(policy.CircleCreate))
	opCirclesRemoveCircle          = newOp("trellis.v1.Circles/RemoveCircle", onCircle(policy.CircleOwn))
	opCirclesGetCircle             = newOp("trellis.v1.Circles/GetCircle", onCircle(policy.CircleRead))
	opCirclesListCircles           = newOp("trellis.v1.Circles/ListCircles", listing(policy.CircleRead, "circle"))
	opCirclesAddUsers              = newOp("trellis.v1.Circles/AddUsers", onCircle(policy.CircleAddUser))
	opCirclesJoinCircle            = newOp("trellis.v1.Circles/JoinCircle", powerful)
	opCirclesRemoveUsers           = newOp("trellis.v1.Circles/RemoveUsers", orSelf(onCircle(policy.CircleRemoveUser)))
	opCirclesChangeRights          = newOp("trellis.v1.Circles/ChangeRights", onCircle(policy.CircleAddUser))
	opCirclesSetOwner              = newOp("trellis.v1.Circles/SetOwner", onCircle(policy.CircleOwn))
	opCirclesGetProfileDescription = newOp("trellis.v1.Circles/GetProfileDescription", authenticated)
	opCirclesGetCircleProfile      = newOp("trellis.v1.Circles/GetCircleProfile", onCircle(policy.CircleRead))
	opCirclesSetCircleProfile      = newOp("trellis.v1.Circles/SetCircleProfile", onCircle(policy.CircleOwn))

	// Notifications and requests concern the caller's own; answering a
	// request is for the party whose consent it waits for. Sending needs
	// standing: an admin to anyone, a project's or circle's owner to its
	// members.
	opNotificationsList           = newOp("trellis.v1.Notifications/List", authenticated)
	opNotificationsMark           = newOp("trellis.v1.Notifications/Mark", authenticated)
	opNotificationsWatch          = newOp("trellis.v1.Notifications/Watch", authenticated)
	opNotificationsListRequests   = newOp("trellis.v1.Notifications/ListRequests", authenticated)
	opNotificationsAcceptRequest  = newOp("trellis.v1.Notifications/AcceptRequest", consent)
	opNotificationsDeclineRequest = newOp("trellis.v1.Notifications/DeclineRequest", orSelf(consent)) // or the requester withdraws
	opNotificationsSend           = newOp("trellis.v1.Notifications/Send", ownerOrAdmin(check(policy.ProjectOwn, "project"), check(policy.CircleOwn, "circle")))

	// Experiments. Listings show what the caller may read; exporting needs
	// read, importing needs create under the id given.
	opExperimentsCreateExperiment      = newOp("trellis.v1.Experiments/CreateExperiment", onExperiment(policy.ExperimentCreate))
	opExperimentsGetExperiment         = newOp("trellis.v1.Experiments/GetExperiment", onExperiment(policy.ExperimentRead))
	opExperimentsListExperiments       = newOp("trellis.v1.Experiments/ListExperiments", listing(policy.ExperimentRead, "experiment"))
	opExperimentsAddAspects            = newOp("trellis.v1.Experiments/AddAspects", onExperiment(policy.ExperimentModify))
	opExperimentsChangeAspects         = newOp("trellis.v1.Experiments/ChangeAspects", onExperiment(policy.ExperimentModify))
	opExperimentsRemoveAspects         = newOp("trellis.v1.Experiments/RemoveAspects", onExperiment(policy.ExperimentModify))
	opExperimentsChangeAccess          = newOp("trellis.v1.Experiments/ChangeAccess", onExperiment(policy.ExperimentModifyAccess))
	opExperimentsGetProfileDescription = newOp("trellis.v1.Experiments/GetProfileDescription", authenticated)
	opExperimentsGetExperimentProfile  = newOp("trellis.v1.Experiments/GetExperimentProfile", onExperiment(policy.ExperimentRead))
	opExperimentsSetExperimentProfile  = newOp("trellis.v1.Experiments/SetExperimentProfile", onExperiment(policy.ExperimentModify))
	// Objects made in a project's namespace are their creator's; removing
	// one takes its owner, or the owner of that project (experiment.remove,
	// library.remove). Handing one on is its owner's, and waits for the new
	// owner's consent (a request, as invitations do).
	opExperimentsRemoveExperiment = newOp("trellis.v1.Experiments/RemoveExperiment", onExperiment(policy.ExperimentRemove))
	opExperimentsSetOwner         = newOp("trellis.v1.Experiments/SetOwner", onExperiment(policy.ExperimentOwn))
	opExperimentsExportExperiment = newOp("trellis.v1.Experiments/ExportExperiment", onExperiment(policy.ExperimentRead))
	opExperimentsImportExperiment = newOp("trellis.v1.Experiments/ImportExperiment", onExperiment(policy.ExperimentCreate))

	// Libraries. Adding experiments also needs read on each.
	opLibrariesCreateLibrary          = newOp("trellis.v1.Libraries/CreateLibrary", onLibrary(policy.LibraryCreate))
	opLibrariesGetLibrary             = newOp("trellis.v1.Libraries/GetLibrary", onLibrary(policy.LibraryRead))
	opLibrariesListLibraries          = newOp("trellis.v1.Libraries/ListLibraries", listing(policy.LibraryRead, "library"))
	opLibrariesAddExperiments         = newOp("trellis.v1.Libraries/AddExperiments", each(allOf(check(policy.LibraryAddExperiment, "library"), check(policy.ExperimentRead, "experiment"))))
	opLibrariesListLibraryExperiments = newOp("trellis.v1.Libraries/ListLibraryExperiments", onLibrary(policy.LibraryRead)) // shows only the experiments the caller may read
	opLibrariesRemoveExperiments      = newOp("trellis.v1.Libraries/RemoveExperiments", onLibrary(policy.LibraryRemoveExperiment))
	opLibrariesChangeAccess           = newOp("trellis.v1.Libraries/ChangeAccess", onLibrary(policy.LibraryModifyAccess))
	opLibrariesGetProfileDescription  = newOp("trellis.v1.Libraries/GetProfileDescription", authenticated)
	opLibrariesGetLibraryProfile      = newOp("trellis.v1.Libraries/GetLibraryProfile", onLibrary(policy.LibraryRead))
	opLibrariesSetLibraryProfile      = newOp("trellis.v1.Libraries/SetLibraryProfile", onLibrary(policy.LibraryOwn))
	opLibrariesRemoveLibrary          = newOp("trellis.v1.Libraries/RemoveLibrary", onLibrary(policy.LibraryRemove))
	opLibrariesSetOwner               = newOp("trellis.v1.Libraries/SetOwner", onLibrary(policy.LibraryOwn))

	// Resources: the inventory is visible to whoever may realize.
	opResourcesRegisterResource = newOp("trellis.v1.Resources/RegisterResource", admin)
	opResourcesGetResource      = newOp("trellis.v1.Resources/GetResource", powerful)
	opResourcesListResources    = newOp("trellis.v1.Resources/ListResources", powerful)
	opResourcesSetResourceState = newOp("trellis.v1.Resources/SetResourceState", admin)
	opResourcesRemoveResource   = newOp("trellis.v1.Resources/RemoveResource", admin)

	// Realizations: realizing needs realize on the experiment and
	// realize_experiment in the project.
	opRealizationsRealize             = newOp("trellis.v1.Realizations/Realize", allOf(check(policy.ExperimentRealize, "experiment"), check(policy.ProjectRealizeExperiment, "project")))
	opRealizationsGetRealization      = newOp("trellis.v1.Realizations/GetRealization", onRealization(policy.RealizationRead))
	opRealizationsListRealizations    = newOp("trellis.v1.Realizations/ListRealizations", listing(policy.RealizationRead, "realization"))
	opRealizationsRenew               = newOp("trellis.v1.Realizations/Renew", onRealization(policy.RealizationModify))
	opRealizationsChangeBindings      = newOp("trellis.v1.Realizations/ChangeBindings", onRealization(policy.RealizationModify))
	opRealizationsChangeAccess        = newOp("trellis.v1.Realizations/ChangeAccess", onRealization(policy.RealizationModifyAccess))
	opRealizationsRelease             = newOp("trellis.v1.Realizations/Release", onRealization(policy.RealizationRelease))
	opRealizationsListAllRealizations = newOp("trellis.v1.Realizations/ListAllRealizations", admin)
	opRealizationsForceRelease        = newOp("trellis.v1.Realizations/ForceRelease", admin)
	opRealizationsReportState         = newOp("trellis.v1.Realizations/ReportState", site)
	opRealizationsWatch               = newOp("trellis.v1.Realizations/Watch", onRealization(policy.RealizationRead))

	// Providers (sites). Admins register and manage them; a site registers
	// its key with the one-time token; a user who may realize connects to
	// a site; a site's key proves only its own reports.
	opProvidersAddProvider            = newOp("trellis.v1.Providers/AddProvider", admin)
	opProvidersRegisterSite           = newOp("trellis.v1.Providers/RegisterSite", public) // the one-time token is the credential
	opProvidersListProviders          = newOp("trellis.v1.Providers/ListProviders", admin)
	opProvidersGetProvider            = newOp("trellis.v1.Providers/GetProvider", admin)
	opProvidersSetProviderState       = newOp("trellis.v1.Providers/SetProviderState", admin)
	opProvidersRemoveProvider         = newOp("trellis.v1.Providers/RemoveProvider", admin)
	opProvidersCreateConnectionTicket = newOp("trellis.v1.Providers/CreateConnectionTicket", personal(powerful))
	opProvidersCreateSiteToken        = newOp("trellis.v1.Providers/CreateSiteToken", powerful)
	opProvidersListConnections        = newOp("trellis.v1.Providers/ListConnections", selfOrAdmin)
	opProvidersRemoveConnection       = newOp("trellis.v1.Providers/RemoveConnection", selfOrAdmin)
	opProvidersReportConnection       = newOp("trellis.v1.Providers/ReportConnection", site)
	// Forward: like CreateSiteToken, and the service checks the caller is
	// connected to the site; the site checks the user's own signature.
	opProvidersForward        = newOp("trellis.v1.Providers/Forward", powerful)
	opProvidersListDeliveries = newOp("trellis.v1.Providers/ListDeliveries", admin)

	// Policy: a user may ask about itself; admins about anyone.
	opPolicyCheck       = newOp("trellis.v1.Policy/Check", selfOrAdmin)
	opPolicyExplain     = newOp("trellis.v1.Policy/Explain", selfOrAdmin)
	opPolicyListAllowed = newOp("trellis.v1.Policy/ListAllowed", selfOrAdmin)

	// Operations of no API contract: the doors that are not the Connect
	// API call them, with the credentials their protocols carry.

	// HTTP Basic (the local backend): the password is the credential.
	opBasicAuthenticate = newOp(OpBasicAuth, public)
	// The OpenID Connect provider's steps (internal/transport/oidcprovider):
	// the client's secret, the code and the token are the credentials;
	// the login page's password is checked by the step itself.
	opOIDCClient           = newOp("oidc.provider/Client", public)
	opOIDCAuthenticate     = newOp("oidc.provider/AuthenticateClient", public)
	opOIDCStartAuthRequest = newOp("oidc.provider/StartAuthRequest", public)
	opOIDCAuthRequest      = newOp("oidc.provider/AuthRequest", public)
	opOIDCLogin            = newOp(OpOIDCLogin, public) // a user logs in to authorize a client
	opOIDCSaveCode         = newOp("oidc.provider/SaveCode", public)
	opOIDCRedeemCode       = newOp("oidc.provider/RedeemCode", public)
	opOIDCEndAuthRequest   = newOp("oidc.provider/EndAuthRequest", public)
	opOIDCToken            = newOp(OpOIDCToken, public) // a client redeems a code for tokens
	opOIDCUser             = newOp("oidc.provider/User", public)
	opOIDCTokenClaims      = newOp("oidc.provider/TokenClaims", public)
	opOIDCRevoke           = newOp(OpOIDCRevoke, public) // a client revokes a token
	opOIDCEndSession       = newOp("oidc.provider/EndSession", public)
	// The oidc backend's browser pages (internal/transport/oidclogin): the
	// login's state and the password typed are the credentials.
	opExternalCallback = newOp(OpExternalCallback, public) // the provider sent the browser back
	opExternalLink     = newOp(OpExternalLink, public)     // first use: the identity linked by password
)
