"""zoo-rnn: RNN, LSTM and GRU from their equations; language model and attention seq2seq."""
