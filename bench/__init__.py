"""The benchmark: chatalot-db apply against an Ansible playbook and a shell-script floor.

`python bench/run.py --help`; the README's "Benchmark" section says how to read it.
"""
