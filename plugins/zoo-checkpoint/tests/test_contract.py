from zoo_core.testing import parametrize_components


@parametrize_components(plugin="checkpoint")
def test_contract(zoo_case):
    zoo_case.run()
