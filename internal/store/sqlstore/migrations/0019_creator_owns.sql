-- An experiment or library made in a project's namespace is owned by its
-- creator (as DETER does), no longer by the project: ownership is a user's,
-- handed on with the new owner's consent.
UPDATE experiments SET owner = creator WHERE owner IN (SELECT name FROM projects);
UPDATE libraries SET owner = creator WHERE owner IN (SELECT name FROM projects);
