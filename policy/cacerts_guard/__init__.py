"""The rules of the policy pack in policy/, as plain functions over plain values.

The pack's __main__.py hands every rule the resources the engine shows it (unknown values replaced by
resources.UNKNOWN), so the rules run, and are tested, without pulumi-policy. rules.py lists them.
"""
