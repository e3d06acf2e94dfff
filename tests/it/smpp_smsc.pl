#!/usr/bin/perl
# A test SMSC in the SMPP 3.4 server role, on Debian's Net::SMPP (libnet-smpp-perl), for the
# suite's SMPP gateway tests (tests/it/smpp_smsc.rs starts it once per test binary).
#
# It accepts bind_transmitter with the system id and password it was given (ESME_RINVPASWD
# otherwise), answers enquire_link, and answers each submit_sm as the next line of the script
# file says, taking that line off: "error 0xNN" answers with that command status, "drop" closes
# the connection without answering; with no line left it accepts the message. SIGUSR1 closes
# every bound session at once, as an SMSC restarting would. With --tls-port, Debian's socat
# serves the same SMSC over TLS there (SMPP over TLS, as providers offer it). Every event is one
# JSON line on standard output. It exits, with everything it started, when its standard input
# closes (the test process is gone).

use strict;
use warnings;

use Fcntl qw(:flock);
use Getopt::Long;
use IO::Select;
use JSON::PP;
use Net::SMPP;
use POSIX ();

my ($port, $system_id, $password, $script, $tls_port, $cert, $key);
GetOptions(
    'port=i'      => \$port,
    'system-id=s' => \$system_id,
    'password=s'  => \$password,
    'script=s'    => \$script,
    'tls-port=i'  => \$tls_port,
    'cert=s'      => \$cert,
    'key=s'       => \$key,
) or die "usage: smpp_smsc.pl --port N --system-id ID --password PW --script FILE [--tls-port N --cert PEM --key PEM]\n";
setpgrp(0, 0);

$| = 1;
my $json = JSON::PP->new->canonical;
my $parent = $$;

sub say_event {
    my (%event) = @_;
    syswrite STDOUT, $json->encode({ %event, pid => $$ }) . "\n";
}

# The next scripted answer to a submit_sm, taken off the script file under a lock.
sub next_answer {
    open my $fh, '+<', $script or return '';
    flock $fh, LOCK_EX;
    my @lines = <$fh>;
    my $first = shift @lines // '';
    seek $fh, 0, 0;
    truncate $fh, 0;
    print $fh @lines;
    close $fh;
    chomp $first;
    return $first;
}

my $listener = Net::SMPP->new_listen(
    '127.0.0.1',
    port         => $port,
    smpp_version => 0x34,
    listen       => 16,
) or die "cannot listen on 127.0.0.1:$port: $!\n";

my %children;
$SIG{CHLD} = sub {
    while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) { delete $children{$pid} }
};
$SIG{USR1} = sub { kill 'USR1', keys %children };

# Exit with the test process: a reader on standard input that ends the group at end of file.
my $watchdog = fork // die "fork: $!";
if ($watchdog == 0) {
    $SIG{USR1} = 'IGNORE';
    1 while sysread STDIN, my $buffer, 4096;
    kill 'TERM', -$parent, $parent;
    POSIX::_exit(0);
}

if ($tls_port) {
    my $socat = fork // die "fork: $!";
    if ($socat == 0) {
        $SIG{USR1} = 'IGNORE';
        exec '/usr/bin/socat', "OPENSSL-LISTEN:$tls_port,bind=127.0.0.1,reuseaddr,fork,cert=$cert,key=$key,verify=0",
            "TCP:127.0.0.1:$port"
            or die "socat (Debian's socat) does not run: $!\n";
    }
}

say_event(event => 'listening', port => $port);

while (1) {
    my $session = $listener->accept or next;
    my $pid = fork;
    next unless defined $pid;
    if ($pid) {
        $children{$pid} = 1;
        close $session;
        next;
    }
    $SIG{CHLD} = 'DEFAULT';
    $SIG{__WARN__} = sub { warn @_ unless $_[0] =~ /premature eof/ };
    $SIG{USR1} = sub { say_event(event => 'hung_up'); close $session; POSIX::_exit(0) };
    close $listener;
    serve($session);
    POSIX::_exit(0);
}

sub serve {
    my ($session) = @_;
    my $bound = 0;
    my $next_id = 1;
    while (1) {
        my $pdu = $session->read_pdu or do { say_event(event => 'closed_by_client'); return };
        my $command = Net::SMPP::pdu_tab->{$pdu->{cmd}}{cmd} // sprintf('0x%08x', $pdu->{cmd});
        if ($command eq 'bind_transmitter') {
            my $ok = ($pdu->{system_id} // '') eq $system_id && ($pdu->{password} // '') eq $password;
            say_event(
                event             => 'bind',
                accepted          => $ok ? JSON::PP::true : JSON::PP::false,
                system_id         => $pdu->{system_id},
                system_type       => $pdu->{system_type},
                interface_version => $pdu->{interface_version},
            );
            $session->bind_transmitter_resp(system_id => 'TESTSMSC', seq => $pdu->{seq},
                status => $ok ? 0 : 0x0e);
            $bound = $ok;
        } elsif ($command eq 'enquire_link') {
            say_event(event => 'enquire_link');
            $session->enquire_link_resp(seq => $pdu->{seq});
        } elsif ($command eq 'unbind') {
            say_event(event => 'unbind');
            $session->unbind_resp(seq => $pdu->{seq});
            return;
        } elsif ($command eq 'submit_sm') {
            if (!$bound) {
                $session->submit_sm_resp(message_id => '', seq => $pdu->{seq}, status => 0x04);
                next;
            }
            my $answer = next_answer();
            my %message = (
                destination_addr => $pdu->{destination_addr},
                dest_addr_ton    => $pdu->{dest_addr_ton},
                dest_addr_npi    => $pdu->{dest_addr_npi},
                source_addr      => $pdu->{source_addr},
                source_addr_ton  => $pdu->{source_addr_ton},
                source_addr_npi  => $pdu->{source_addr_npi},
                data_coding      => $pdu->{data_coding},
                validity_period  => $pdu->{validity_period},
                short_message    => $pdu->{short_message},
            );
            if ($answer eq 'drop') {
                say_event(event => 'dropped', %message);
                close $session;
                return;
            } elsif ($answer =~ /^error (0x[0-9a-fA-F]+)$/) {
                say_event(event => 'refused', status => $1, %message);
                $session->submit_sm_resp(message_id => '', seq => $pdu->{seq}, status => hex $1);
            } else {
                my $id = sprintf('smsc-%d-%d', $$, $next_id++);
                say_event(event => 'submit', message_id => $id, %message);
                $session->submit_sm_resp(message_id => $id, seq => $pdu->{seq});
            }
        } else {
            say_event(event => 'unexpected', command => $command);
            $session->generic_nack(seq => $pdu->{seq}, status => 0x03);
        }
    }
}
