"""Test harness: the schema comes from the migrations; every test runs inside a transaction
that is rolled back. SQLite by default; PostgreSQL when MES_TEST_DATABASE_URL is set (a fresh
database is created for the run and dropped afterwards). The shared fixtures live in
tests/fixtures/ and are loaded here, once, for every test package."""

pytest_plugins = ["tests.fixtures.app", "tests.fixtures.plant", "tests.fixtures.races"]
