"""Markers transformers' common tests use (registered so pytest does not warn about them)."""


def pytest_configure(config):
    for marker in (
        "flash_attn_test",
        "flash_attn_3_test",
        "flash_attn_4_test",
        "torch_compile_test",
        "torch_export_test",
        "generate",
        "is_flaky",
    ):
        config.addinivalue_line("markers", f"{marker}: used by transformers' common tests")
