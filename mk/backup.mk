# Backups and disaster recovery (docs/operations/backup-restore.md, disaster-recovery.md).
.PHONY: test-backup test-backup-slow bench-backup

test-backup: install-dev ## backup/DR tests without the cluster ones
	$(BIN)/python -m pytest -m 'not slow' tests/unit/backup tests/integration/backup tests/integration/dr

test-backup-slow: install-dev ## backup/DR tests on throwaway PostgreSQL clusters (PITR, failover)
	$(BIN)/python -m pytest -m slow tests/integration/backup tests/integration/dr

bench-backup: install-dev ## pipeline MB/s and 1M-user full backup/restore (bench/backup/README.md)
	$(BIN)/python -m bench.backup.bench_backup pipeline --mb 512
	$(BIN)/python -m bench.backup.bench_backup full --users 1000000
