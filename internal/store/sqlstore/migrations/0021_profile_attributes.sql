-- Administered profile attributes: the definitions of the self-describing
-- profiles of users, projects, circles, experiments and libraries. Admins
-- add, change and remove them (trellis.v1.Admin/AddAttribute …); profile
-- descriptions and validation read them from here. Rows seeded below are
-- the built-in DETER attributes (domain.UserProfile …); system ones can be
-- re-described and re-formatted but not removed.
CREATE TABLE profile_attributes (
    kind               TEXT NOT NULL,
    name               TEXT {{bytewise}} NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    access             TEXT NOT NULL,
    optional           BOOLEAN NOT NULL DEFAULT FALSE,
    data_type          TEXT NOT NULL,
    format             TEXT NOT NULL DEFAULT '',
    format_description TEXT NOT NULL DEFAULT '',
    length_hint        INTEGER NOT NULL DEFAULT 0,
    ordering_hint      INTEGER NOT NULL DEFAULT 0,
    max_length         INTEGER NOT NULL DEFAULT 0,
    system             BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT profile_attributes_pkey PRIMARY KEY (kind, name)
);

INSERT INTO profile_attributes
    (kind, name, description, access, optional, data_type, format, format_description, length_hint, ordering_hint, max_length, system)
VALUES
    ('user', 'uid', 'User id (login name at the sites)', 'read_only', FALSE, 'string', '', '', 32, 0, 32, TRUE),
    ('user', 'name', 'Full name', 'read_write', FALSE, 'string', '', '', 40, 10, 200, TRUE),
    ('user', 'title', 'Title or position', 'read_write', TRUE, 'string', '', '', 40, 20, 200, FALSE),
    ('user', 'email', 'E-mail address', 'read_write', FALSE, 'string', '[^@\s]+@[^@\s]+\.[^@\s]+', 'an e-mail address: local@domain', 40, 30, 254, TRUE),
    ('user', 'affiliation', 'Institution', 'read_write', TRUE, 'string', '', '', 40, 40, 200, FALSE),
    ('user', 'affiliation_abbrev', 'Abbreviated institution name', 'read_write', TRUE, 'string', '', '', 10, 50, 32, FALSE),
    ('user', 'URL', 'Home page', 'read_write', TRUE, 'string', 'https?://\S+', 'an http or https URL', 60, 60, 500, FALSE),
    ('user', 'address1', 'Postal address, line 1', 'read_write', TRUE, 'string', '', '', 40, 70, 200, FALSE),
    ('user', 'address2', 'Postal address, line 2', 'read_write', TRUE, 'string', '', '', 40, 80, 200, FALSE),
    ('user', 'city', 'City', 'read_write', TRUE, 'string', '', '', 20, 90, 100, FALSE),
    ('user', 'state', 'State or province', 'read_write', TRUE, 'string', '', '', 20, 100, 100, FALSE),
    ('user', 'zip', 'Postal code', 'read_write', TRUE, 'string', '', '', 10, 110, 20, FALSE),
    ('user', 'country', 'Country', 'read_write', TRUE, 'string', '', '', 20, 120, 100, FALSE),
    ('user', 'phone', 'Telephone number', 'read_write', FALSE, 'string', '\+?[0-9][0-9 ().-]{5,30}[0-9]', 'a telephone number: digits, spaces, and + ( ) . - only, e.g. +1 310 555 0100', 20, 130, 40, FALSE),
    ('project', 'description', 'What the project is for', 'read_write', FALSE, 'string', '', '', 80, 10, 4000, FALSE),
    ('project', 'funders', 'Who funds the work', 'read_write', TRUE, 'string', '', '', 60, 20, 1000, FALSE),
    ('project', 'affiliation', 'Institution', 'read_write', TRUE, 'string', '', '', 40, 30, 200, FALSE),
    ('project', 'URL', 'Project web page', 'read_write', TRUE, 'string', 'https?://\S+', 'an http or https URL', 60, 40, 500, FALSE),
    ('circle', 'description', 'What the circle is for', 'read_write', TRUE, 'string', '', '', 80, 10, 4000, FALSE),
    ('circle', 'email', 'Contact address', 'read_write', TRUE, 'string', '[^@\s]+@[^@\s]+\.[^@\s]+', 'an e-mail address: local@domain', 40, 20, 254, FALSE),
    ('experiment', 'description', 'What the experiment studies', 'read_write', TRUE, 'string', '', '', 80, 10, 4000, FALSE),
    ('library', 'description', 'What the library collects', 'read_write', TRUE, 'string', '', '', 80, 10, 4000, FALSE);
