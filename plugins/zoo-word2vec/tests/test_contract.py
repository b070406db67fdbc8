from zoo_core.testing import parametrize_components


@parametrize_components(plugin="word2vec")
def test_contract(zoo_case):
    zoo_case.run()
