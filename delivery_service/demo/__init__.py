"""A demo data set: three provinces with counters, post offices, routes and one user per role."""
