# README examples: `make check-readme` runs every sqlite3 transcript, Python and Node.js example of README.md and
# compares what it prints with the README (tests/check_readme.sh, also run by make test).
.PHONY: check-readme
check-readme: $(BUILD)/vecstore.so
	@bash tests/check_readme.sh
