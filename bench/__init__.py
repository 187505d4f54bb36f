"""The benchmark: chatalot-db apply against an Ansible playbook and a shell-script floor.

`python bench/run.py --help`; docs/benchmark.md says how to read it.
"""
