package portal

import (
	"net/http"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// signinPage is the sign-in form.
type signinPage struct {
	Form *form
	Next string
	// Notice says why the visitor is here (signed out).
	Notice string
	// External offers signing in through the institution (reset.go).
	External bool
}

func (signinPage) title() string { return "Sign in" }

func (h *Portal) signinForm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	next := safeNext(r.URL.Query().Get("next"))
	if s.caller != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.ensureFormToken(w, s)
	p := signinPage{Form: newForm(), Next: next, External: h.external}
	switch {
	case r.URL.Query().Get("reset") != "":
		p.Notice = "Your password is changed: sign in with it."
	case r.URL.Query().Get("out") != "":
		p.Notice = "You are signed out."
	case r.URL.Query().Get("confirmed") != "":
		p.Notice = "Your e-mail address is confirmed: sign in to go on."
	}
	h.render(w, r, s, http.StatusOK, "signin", p)
}

func (h *Portal) signin(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	uid := strings.TrimSpace(r.PostForm.Get("uid"))
	f.Values["uid"] = uid
	next := safeNext(r.PostForm.Get("next"))
	toks, err := h.svc.Accounts.Login(r.Context(), nil, uid, r.PostForm.Get("password"), false)
	if err != nil {
		code := domain.CodeOf(err)
		if code == domain.CodeInternal {
			h.fail(w, r, s, err)
			return
		}
		if !f.explain(err, "uid", "password") {
			f.Error = err.Error()
		}
		h.render(w, r, s, statusOf(code), "signin", signinPage{Form: f, Next: next, External: h.external})
		return
	}
	h.startSession(w, toks)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Portal) signout(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if s.caller == nil {
		// Already over: nothing to end.
		http.Redirect(w, r, "/signin?out=1", http.StatusSeeOther)
		return
	}
	if !h.checkForm(w, r, s) {
		return
	}
	// Logout revokes the session itself, so its tokens stop working
	// wherever they are (every replica, within the change feed's delay).
	if err := h.svc.Accounts.Logout(r.Context(), s.caller); err != nil && !domain.HasCode(err, domain.CodeUnauthenticated) {
		h.fail(w, r, s, err)
		return
	}
	h.setCookie(w, sessionCookie, "", time.Time{})
	http.Redirect(w, r, "/signin?out=1", http.StatusSeeOther)
}

// registerPage is the registration form, generated from the profile
// description.
type registerPage struct {
	Form   *form
	Fields []attrField
	// Email describes the e-mail attribute (the account's address).
	Email domain.Attribute
	UID   domain.Attribute
}

func (registerPage) title() string { return "Create an account" }

func (h *Portal) registerPage(r *http.Request, s *session, f *form) (registerPage, error) {
	d, err := h.svc.Accounts.GetProfileDescription(r.Context(), s.caller)
	if err != nil {
		return registerPage{}, err
	}
	p := registerPage{Form: f, Fields: attrFields(d, f, "uid", "email")}
	p.UID, _ = d.Lookup("uid")
	p.Email, _ = d.Lookup("email")
	return p, nil
}

func (h *Portal) registerForm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	h.ensureFormToken(w, s)
	p, err := h.registerPage(r, s, newForm())
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "register", p)
}

func (h *Portal) register(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if !h.checkForm(w, r, s) {
		return
	}
	d, err := h.svc.Accounts.GetProfileDescription(r.Context(), s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	f := newForm()
	reg := service.Registration{
		UID:      strings.TrimSpace(r.PostForm.Get("uid")),
		Email:    strings.TrimSpace(r.PostForm.Get("email")),
		Password: r.PostForm.Get("password"),
		Profile:  map[string]string{},
	}
	f.Values["uid"], f.Values["email"] = reg.UID, reg.Email
	fields := []string{"uid", "email", "password"}
	for _, a := range d.Attributes() {
		if a.Name == "uid" || a.Name == "email" || a.Access == domain.ReadOnly || a.Access == domain.NoAccess {
			continue
		}
		fields = append(fields, a.Name)
		v := strings.TrimSpace(r.PostForm.Get(a.Name))
		if a.Access != domain.WriteOnly {
			f.Values[a.Name] = v
		}
		if v != "" {
			reg.Profile[a.Name] = v
		}
	}
	if _, err := h.svc.Accounts.Register(r.Context(), s.caller, reg); err != nil {
		if !f.explain(err, fields...) {
			h.fail(w, r, s, err)
			return
		}
		p, perr := h.registerPage(r, s, f)
		if perr != nil {
			h.fail(w, r, s, perr)
			return
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "register", p)
		return
	}
	http.Redirect(w, r, "/register/sent", http.StatusSeeOther)
}

type messagePage struct {
	Title   string
	Message string
	// Link and LinkText offer the next step.
	Link, LinkText string
}

func (m messagePage) title() string { return m.Title }

func (h *Portal) registerSent(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	h.render(w, r, s, http.StatusOK, "message", messagePage{
		Title:   "Check your mail",
		Message: "Your account is created and waits for your e-mail address to be confirmed. We sent a confirmation to the address you gave: follow its link (or paste its token on the confirmation page) within 48 hours, then sign in.",
		Link:    "/confirm", LinkText: "I have a confirmation token",
	})
}

// confirmPage confirms an e-mail address with the mailed token. Opening
// the link only draws the form: a mail scanner fetching links must not
// confirm an address for its owner.
type confirmPage struct {
	Form *form
}

func (confirmPage) title() string { return "Confirm your e-mail address" }

func (h *Portal) confirmForm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	h.ensureFormToken(w, s)
	f := newForm()
	f.Values["token"] = r.URL.Query().Get("token")
	h.render(w, r, s, http.StatusOK, "confirm", confirmPage{Form: f})
}

func (h *Portal) confirm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	f.Values["token"] = tok
	_, err := h.svc.Accounts.ConfirmEmail(r.Context(), s.caller, tok)
	if err != nil {
		if !f.explain(err, "token") {
			h.fail(w, r, s, err)
			return
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "confirm", confirmPage{Form: f})
		return
	}
	if s.caller != nil {
		http.Redirect(w, r, "/profile?confirmed=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin?confirmed=1&next=/", http.StatusSeeOther)
}

// profilePage is the caller's profile, a form generated from the profile
// description; after a save, each attribute's outcome as the service
// reported it.
type profilePage struct {
	Form    *form
	Fields  []attrField
	Saved   bool
	Failed  bool
	Notice  string
	Changes []domain.AttributeChange
}

func (profilePage) title() string { return "Your profile" }

func (h *Portal) profile(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	d, err := h.svc.Accounts.GetProfileDescription(r.Context(), s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	values, err := h.svc.Accounts.GetUserProfile(r.Context(), s.caller, "")
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	f := newForm()
	for _, v := range values {
		f.Values[v.Name] = v.Value
	}
	p := profilePage{Form: f, Fields: attrFields(d, f)}
	if r.URL.Query().Get("confirmed") != "" {
		p.Notice = "Your e-mail address is confirmed."
	}
	h.render(w, r, s, http.StatusOK, "profile", p)
}

func (h *Portal) saveProfile(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	ctx := r.Context()
	d, err := h.svc.Accounts.GetProfileDescription(ctx, s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	values, err := h.svc.Accounts.GetUserProfile(ctx, s.caller, "")
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	current := map[string]string{}
	for _, v := range values {
		current[v.Name] = v.Value
	}
	set := map[string]string{}
	var clear []string
	f := newForm()
	for _, a := range d.Attributes() {
		if a.Access == domain.ReadOnly || a.Access == domain.NoAccess {
			f.Values[a.Name] = current[a.Name]
			continue
		}
		if _, sent := r.PostForm[a.Name]; !sent {
			f.Values[a.Name] = current[a.Name]
			continue
		}
		v := strings.TrimSpace(r.PostForm.Get(a.Name))
		f.Values[a.Name] = v
		switch {
		case v == "" && a.Optional && current[a.Name] != "":
			clear = append(clear, a.Name)
		case v == "" && a.Optional:
			// Empty and was empty: nothing to say.
		case a.Access == domain.WriteOnly && v == "":
		default:
			set[a.Name] = v
		}
	}
	changes, err := h.svc.Accounts.SetUserProfile(ctx, s.caller, "", set, clear)
	if err != nil {
		if !f.explain(err) {
			h.fail(w, r, s, err)
			return
		}
	}
	outcome := map[string]string{}
	failed := false
	for _, c := range changes {
		switch {
		case c.Rule != "":
			f.Errors[c.Name] = c.Reason
			if c.Rule != service.RulePendingConfirmation {
				failed = true
			}
		case c.Changed:
			outcome[c.Name] = "saved"
		default:
			outcome[c.Name] = "unchanged"
		}
	}
	fields := attrFields(d, f)
	for i := range fields {
		fields[i].Outcome = outcome[fields[i].Name]
	}
	status := http.StatusOK
	if failed || f.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	h.render(w, r, s, status, "profile", profilePage{Form: f, Fields: fields, Saved: true, Failed: failed || f.Error != "", Changes: changes})
}
