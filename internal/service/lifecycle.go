package service

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Account lifecycle: closing accounts (by their owners or by admins),
// accounts made by admins, and accounts migrated in from older testbeds.
// docs/api.md ("Account lifecycle") says what is kept and what is erased.

// CloseAccount closes the caller's own account; the password proves it is
// the owner at the keyboard and not a session left open.
func (s *Accounts) CloseAccount(ctx context.Context, p *auth.Principal, pw string) error {
	if err := s.authorize(ctx, p, opUsersCloseAccount, policy.None); err != nil {
		return err
	}
	if pw == "" {
		return domain.Invalid("password", "password.required", "give the account's password to close it")
	}
	if err := s.confirmPassword(ctx, p, opUsersCloseAccount.Name, "password", pw); err != nil {
		return err
	}
	return s.closeAccount(ctx, p, opUsersCloseAccount.Name, p.UID)
}

// RemoveUser closes another account. An admin's own account is closed
// with CloseAccount, which asks for its password.
func (s *Accounts) RemoveUser(ctx context.Context, p *auth.Principal, uid string) error {
	if err := s.authorize(ctx, p, opUsersRemoveUser, policy.None); err != nil {
		return err
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return err
	}
	if uid == p.UID {
		return domain.FailedPrecondition("administrators close their own account with CloseAccount (trellis user close), which asks for its password")
	}
	return s.closeAccount(ctx, p, opUsersRemoveUser.Name, uid)
}

// closeAccount refuses while uid owns projects, holds live realizations or
// is the last administrator; otherwise it ends every session and erases
// the account, keeping a tombstone of its uid, in one transaction.
func (s *Accounts) closeAccount(ctx context.Context, p *auth.Principal, op, uid string) error {
	return s.update(ctx, &record{op: op, actor: p, object: userObject(uid), detail: "account closed"}, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		projects, realizations, err := tx.Users().Holdings(ctx, uid)
		if err != nil {
			return err
		}
		if len(projects)+len(realizations) > 0 {
			return holdingsError(uid, projects, realizations)
		}
		if u.Admin {
			n, err := tx.Users().CountAdmins(ctx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return domain.FailedPrecondition("%s is the last administrator; make another one first", uid)
			}
		}
		// The groups whose member lists change, for the policy graph.
		pm, err := tx.Projects().MembershipsOf(ctx, uid)
		if err != nil {
			return err
		}
		cm, err := tx.Circles().MembershipsOf(ctx, uid)
		if err != nil {
			return err
		}
		// Sessions are revoked (and every replica told) before the rows
		// go, so that no cached access token outlives the account.
		if err := s.revokeUserSessions(ctx, tx, uid); err != nil {
			return err
		}
		if err := tx.Users().Close(ctx, uid, actorUID(p), s.now()); err != nil {
			return err
		}
		for _, m := range pm {
			if err := tx.Changes().Append(ctx, store.ChangeProject, m.Group); err != nil {
				return err
			}
		}
		for _, m := range cm {
			if err := tx.Changes().Append(ctx, store.ChangeCircle, m.Group); err != nil {
				return err
			}
		}
		return tx.Changes().Append(ctx, store.ChangeUser, uid)
	})
}

func holdingsError(uid string, projects, realizations []string) error {
	var parts []string
	if len(projects) > 0 {
		parts = append(parts, "owns projects "+strings.Join(projects, ", ")+" (give each another owner with trellis project owner NAME UID, or remove it)")
	}
	if len(realizations) > 0 {
		parts = append(parts, "holds live realizations "+strings.Join(realizations, ", ")+" (release them first)")
	}
	return domain.FailedPrecondition("account %s cannot be closed: it %s", uid, strings.Join(parts, " and "))
}

// NewAccount is what an admin gives to create an account.
type NewAccount struct {
	Registration
	Admin bool
}

// CreateUser creates an active account whose e-mail address counts as
// confirmed: the admin vouches for it, and no mail is sent.
func (s *Accounts) CreateUser(ctx context.Context, p *auth.Principal, r NewAccount) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersCreateUser, policy.None); err != nil {
		return nil, err
	}
	email, profile, err := s.checkRegistration(ctx, p, r.Registration)
	if err != nil {
		return nil, err
	}
	secrets, err := s.newPassword(ctx, r.Password)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &domain.User{UID: r.UID, Email: email, EmailVerified: true, State: domain.UserActive, Admin: r.Admin, CreatedAt: now, UpdatedAt: now}
	err = s.update(ctx, &record{op: opUsersCreateUser.Name, actor: p, object: userObject(u.UID), detail: fmt.Sprintf("admin=%t", r.Admin)}, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u, ""); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, u.UID, secrets); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileUser, u.UID, profile); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeUser, u.UID)
	})
	if err != nil {
		return nil, s.suggestUID(ctx, err, r.UID, r.Profile["name"], email)
	}
	return u, nil
}

// checkRegistration validates a new account's uid, e-mail address,
// password and profile, and returns the normalized address and the profile
// to store (without the address, which the account keeps).
func (s *Accounts) checkRegistration(ctx context.Context, p *auth.Principal, r Registration) (string, map[string]string, error) {
	var vs domain.Violations
	if err := vs.Check(domain.ValidateUID("uid", r.UID)); err != nil {
		return "", nil, err
	}
	email, err := domain.NormalizeEmail("email", r.Email)
	if err := vs.Check(err); err != nil {
		return "", nil, err
	}
	if err := vs.Check(password.CheckPolicy("password", r.UID, r.Password)); err != nil {
		return "", nil, err
	}
	profile, err := s.checkProfile(ctx, p, &vs, "", r.UID, r.Profile, r.Email, email)
	if err != nil {
		return "", nil, err
	}
	if err := vs.Err(); err != nil {
		return "", nil, err
	}
	return email, profile, nil
}

// checkProfile trims a new account's profile and validates it, naming
// fields under prefix.
func (s *Accounts) checkProfile(ctx context.Context, p *auth.Principal, vs *domain.Violations, prefix, uid string, given map[string]string, rawEmail, email string) (map[string]string, error) {
	profile := map[string]string{}
	for k, v := range given {
		profile[k] = strings.TrimSpace(v)
	}
	if pe, ok := profile["email"]; ok && pe != rawEmail && pe != email {
		vs.Add(prefix+"profile.email", "profile.conflict", "give the e-mail address once, in the email field")
	}
	profile["email"] = email
	if pu, ok := profile["uid"]; ok && pu != uid {
		vs.Add(prefix+"profile.uid", "profile.conflict", "give the uid once, in the uid field")
	}
	if p != nil && p.Admin {
		// An administrator may write read-only attributes, so the
		// description it validates against requires the uid too.
		profile["uid"] = uid
	}
	var sub domain.Violations
	if err := sub.Check(s.validateNewProfile(ctx, p, store.ProfileUser, profile)); err != nil {
		return nil, err
	}
	for _, v := range sub {
		vs.Add(prefix+v.Field, v.Rule, v.Description)
	}
	// Kept on the account, the source of truth.
	delete(profile, "email")
	delete(profile, "uid")
	return profile, nil
}

// suggestUID turns the already-exists answer about a taken uid into one
// that suggests a free uid, derived from the name or the e-mail address as
// DETER offers. Other errors (a taken e-mail address) pass unchanged.
func (s *Accounts) suggestUID(ctx context.Context, err error, uid, name, email string) error {
	if !domain.HasCode(err, domain.CodeAlreadyExists) {
		return err
	}
	var free string
	verr := s.view(ctx, func(tx store.Tx) error {
		taken, err := tx.Users().Taken(ctx, uid)
		if err != nil || !taken {
			return err
		}
		// When the address is taken too, the refusal may be about it: a
		// new uid would not help, so none is offered.
		if _, err := tx.Users().GetByEmail(ctx, email); err == nil || !domain.HasCode(err, domain.CodeNotFound) {
			return err
		}
		for _, c := range uidCandidates(uid, name, email) {
			t, err := tx.Users().Taken(ctx, c)
			if err != nil {
				return err
			}
			if !t {
				free = c
				return nil
			}
		}
		return nil
	})
	if verr != nil || free == "" {
		return err
	}
	var de *domain.Error
	msg := err.Error()
	if errors.As(err, &de) {
		msg = de.Message
	}
	return domain.AlreadyExists("%s; uid %q is free", msg, free)
}

var notUIDChar = regexp.MustCompile(`[^a-z0-9]+`)

// uidCandidates lists valid uids to suggest, best first: from the name
// (first initial and last name, first name, whole name), from the e-mail
// address's local part, then the uid asked for with a number.
func uidCandidates(uid, name, email string) []string {
	var out []string
	seen := map[string]bool{uid: true}
	add := func(c string) {
		c = notUIDChar.ReplaceAllString(strings.ToLower(c), "")
		if len(c) > domain.UIDMaxLen {
			c = c[:domain.UIDMaxLen]
		}
		// A uid begins with a letter: numbers go after.
		if seen[c] || domain.ValidateUID("uid", c) != nil {
			return
		}
		seen[c] = true
		out = append(out, c)
	}
	if words := strings.Fields(name); len(words) > 0 {
		first, last := words[0], words[len(words)-1]
		if len(words) > 1 {
			add(first[:1] + last)
		}
		add(first)
		add(strings.Join(words, ""))
	}
	local, _, _ := strings.Cut(email, "@")
	add(local)
	base := uid
	if len(base) > domain.UIDMaxLen-2 {
		base = base[:domain.UIDMaxLen-2]
	}
	for i := 2; i < 100; i++ {
		add(base + strconv.Itoa(i))
	}
	return out
}

// ImportedUser is one account migrated in from another testbed, with the
// password hash that testbed kept (see password.CheckImportable).
type ImportedUser struct {
	UID, Email   string
	Profile      map[string]string
	PasswordHash string
	Admin        bool
	State        string
}

// maxImport bounds one import: an export larger than this is sent in parts.
const maxImport = 10000

// ImportUsers creates the accounts given, all or none. Each keeps the
// password hash it came with until its first successful login replaces it
// with Trellis's own (Hasher.Verify asks for the rehash). The hashes never
// leave the store: not in answers, errors or the audit record.
func (s *Accounts) ImportUsers(ctx context.Context, p *auth.Principal, in []ImportedUser) ([]*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersImportUsers, policy.None); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, domain.Invalid("users", "users.required", "give at least one account to import")
	}
	if len(in) > maxImport {
		return nil, domain.Invalid("users", "users.count", fmt.Sprintf("at most %d accounts per import; send the rest in another", maxImport))
	}
	var vs domain.Violations
	now := s.now()
	users := make([]*domain.User, len(in))
	profiles := make([]map[string]string, len(in))
	seenUID, seenEmail := map[string]int{}, map[string]int{}
	for i, iu := range in {
		f := fmt.Sprintf("users[%d].", i)
		if err := vs.Check(domain.ValidateUID(f+"uid", iu.UID)); err != nil {
			return nil, err
		}
		if j, dup := seenUID[iu.UID]; dup && iu.UID != "" {
			vs.Add(f+"uid", "uid.duplicate", fmt.Sprintf("uid %q is also users[%d]'s", iu.UID, j))
		}
		seenUID[iu.UID] = i
		email, err := domain.NormalizeEmail(f+"email", iu.Email)
		if err := vs.Check(err); err != nil {
			return nil, err
		}
		if j, dup := seenEmail[strings.ToLower(email)]; dup && email != "" {
			vs.Add(f+"email", "email.duplicate", fmt.Sprintf("the address is also users[%d]'s", j))
		}
		seenEmail[strings.ToLower(email)] = i
		if iu.PasswordHash != "" {
			if err := password.CheckImportable(iu.PasswordHash); err != nil {
				// The error names the format's problem, never the hash.
				vs.Add(f+"password_hash", "password_hash.format", strings.TrimPrefix(err.Error(), "password: "))
			}
		}
		state := domain.UserActive
		switch st := domain.UserState(iu.State); st {
		case "":
		case domain.UserActive, domain.UserPendingEmail, domain.UserLocked, domain.UserDisabled:
			state = st
		default:
			vs.Add(f+"state", "state.unknown", fmt.Sprintf("unknown state %q; one of active, pending_email, locked, disabled", iu.State))
		}
		profile, err := s.checkProfile(ctx, p, &vs, f, iu.UID, iu.Profile, iu.Email, email)
		if err != nil {
			return nil, err
		}
		profiles[i] = profile
		users[i] = &domain.User{UID: iu.UID, Email: email, EmailVerified: state != domain.UserPendingEmail, State: state, Admin: iu.Admin, CreatedAt: now, UpdatedAt: now}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	err := s.update(ctx, &record{op: opUsersImportUsers.Name, actor: p, detail: fmt.Sprintf("imported %d accounts", len(users))}, func(tx store.Tx) error {
		for i, u := range users {
			if err := tx.Users().Create(ctx, u, in[i].PasswordHash); err != nil {
				if domain.HasCode(err, domain.CodeAlreadyExists) {
					return domain.AlreadyExists("users[%d]: %s", i, err.Error())
				}
				return err
			}
			if err := tx.Profiles().Set(ctx, store.ProfileUser, u.UID, profiles[i]); err != nil {
				return err
			}
			if err := tx.Changes().Append(ctx, store.ChangeUser, u.UID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// ImportedProject is one project migrated in from another testbed.
type ImportedProject struct {
	Name, Owner, Description string
	Members                  []ImportedMember
}

// ImportedMember is a member of an imported project with its rights.
type ImportedMember struct {
	UID    string
	Rights []string
}

// ImportProjects creates approved projects with their owners and members,
// all or none. Owners and members must be accounts already (import the
// users first).
func (s *Social) ImportProjects(ctx context.Context, p *auth.Principal, in []ImportedProject) ([]string, error) {
	if err := s.authorize(ctx, p, opProjectsImportProjects, policy.None); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, domain.Invalid("projects", "projects.required", "give at least one project to import")
	}
	if len(in) > maxImport {
		return nil, domain.Invalid("projects", "projects.count", fmt.Sprintf("at most %d projects per import; send the rest in another", maxImport))
	}
	var vs domain.Violations
	rights := make([][]domain.Rights, len(in))
	seen := map[string]int{}
	for i, ip := range in {
		f := fmt.Sprintf("projects[%d].", i)
		if err := vs.Check(domain.ValidateProjectName(f+"name", ip.Name)); err != nil {
			return nil, err
		}
		if j, dup := seen[ip.Name]; dup && ip.Name != "" {
			vs.Add(f+"name", "name.duplicate", fmt.Sprintf("project %q is also projects[%d]", ip.Name, j))
		}
		seen[ip.Name] = i
		if err := vs.Check(domain.ValidateUID(f+"owner", ip.Owner)); err != nil {
			return nil, err
		}
		var sub domain.Violations
		if err := sub.Check(s.validateNewProfile(ctx, p, store.ProfileProject, map[string]string{"description": ip.Description})); err != nil {
			return nil, err
		}
		for _, v := range sub {
			vs.Add(f+v.Field, v.Rule, v.Description)
		}
		rights[i] = make([]domain.Rights, len(ip.Members))
		for j, m := range ip.Members {
			mf := fmt.Sprintf("%smembers[%d].", f, j)
			if err := vs.Check(domain.ValidateUID(mf+"uid", m.UID)); err != nil {
				return nil, err
			}
			r, err := domain.ParseRights(mf+"rights", domain.ProjectRights, m.Rights)
			if err := vs.Check(err); err != nil {
				return nil, err
			}
			rights[i][j] = r
		}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	names := make([]string, len(in))
	err := s.update(ctx, &record{op: opProjectsImportProjects.Name, actor: p, detail: fmt.Sprintf("imported %d projects", len(in))}, func(tx store.Tx) error {
		now := s.now()
		for i, ip := range in {
			f := fmt.Sprintf("projects[%d].", i)
			if err := checkNameFree(ctx, tx, f+"name", ip.Name); err != nil {
				if domain.HasCode(err, domain.CodeAlreadyExists) {
					return domain.AlreadyExists("projects[%d]: %s", i, err.Error())
				}
				return err
			}
			if err := accountExists(ctx, tx, f+"owner", ip.Owner); err != nil {
				return err
			}
			proj := &domain.Project{Name: ip.Name, Owner: ip.Owner, State: domain.ProjectApproved, CreatedAt: now, ApprovedAt: now}
			if err := tx.Projects().Create(ctx, proj); err != nil {
				return err
			}
			if err := tx.Profiles().Set(ctx, store.ProfileProject, ip.Name, map[string]string{"description": ip.Description}); err != nil {
				return err
			}
			if err := s.makeOwnerMember(ctx, tx, proj); err != nil {
				return err
			}
			for j, m := range ip.Members {
				if m.UID == ip.Owner {
					continue // the owner holds every right already
				}
				if err := accountExists(ctx, tx, fmt.Sprintf("%smembers[%d].uid", f, j), m.UID); err != nil {
					return err
				}
				if err := tx.Projects().SetMember(ctx, &domain.Membership{Group: ip.Name, UID: m.UID, Rights: rights[i][j], AddedAt: now}); err != nil {
					return err
				}
			}
			names[i] = ip.Name
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}

// accountExists refuses, naming field, a uid that has no account.
func accountExists(ctx context.Context, tx store.Tx, field, uid string) error {
	_, err := tx.Users().Get(ctx, uid)
	if domain.HasCode(err, domain.CodeNotFound) {
		return domain.Invalid(field, "uid.unknown", fmt.Sprintf("no account %q: import the users first", uid))
	}
	return err
}
