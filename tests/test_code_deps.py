"""Rules' code inputs are read from their scripts' imports (aslseg/code_deps.py)."""

from __future__ import annotations

from pathlib import Path

from aslseg.code_deps import package_modules
from tests.conftest import REPO

PACKAGE = REPO / "aslseg"


def modules(script: str) -> set[str]:
    return {str(Path(p).relative_to(PACKAGE)) for p in package_modules(REPO / "workflow_scripts" / script, PACKAGE)}


def test_a_job_depends_on_what_its_script_imports_transitively():
    ssl_train = modules("ssl_train.py")
    # ssl_train imports aslseg.ssl.methods (METHODS), whose __init__ imports every method
    assert {"ssl/train.py", "ssl/methods/__init__.py", "ssl/methods/bcp.py", "precision.py", "pseudo_labels.py",
            "select/expand.py", "__init__.py", "ssl/__init__.py"} <= ssl_train
    assert not any(name.startswith(("sam/", "adapt/", "paper/", "data/")) for name in ssl_train)


def test_editing_stage1_does_not_retrain_the_adaptation_network_or_the_liver_model():
    adapt_train = modules("adapt_train.py")
    assert {"adapt/train.py", "seg2d/network.py", "seg2d/augment.py", "seg2d/sampling.py"} <= adapt_train
    # the shared toolkit lives in seg2d/: nothing of Stage I's package reaches AN's or the liver model's jobs
    for script in ("adapt_train.py", "adapt_refine.py", "liver_train.py"):
        assert not any(name.startswith("ssl/") for name in modules(script)), script


def test_imports_inside_functions_and_of_names_count(tmp_path):
    package = tmp_path / "aslseg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py"):
        (package / name).write_text("")
    (package / "a.py").write_text("def f():\n    from aslseg.sub import c\n")
    (package / "sub/c.py").write_text("import aslseg.b\nimport numpy\n")
    script = tmp_path / "job.py"
    script.write_text("from aslseg.a import f\n")
    found = {str(Path(p).relative_to(package)) for p in package_modules(script, package)}
    assert found == {"__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py"}


def test_every_rule_with_a_script_and_code_input_names_an_existing_script():
    for rules in (REPO / "rules").glob("*.smk"):
        for line in rules.read_text().splitlines():
            if "code=script_code(" in line:
                name = line.split('script_code("')[1].split('"')[0]
                assert (REPO / "workflow_scripts" / name).is_file(), (rules.name, name)
